// The console's DNS page: the caller's zones (with the name servers to delegate them to) and
// each zone's records, the managed ones (NS, SOA, the sites' A/AAAA, mail records, certificate
// challenges) shown but locked. Built on app.js's helpers.
"use strict";

Object.assign(PAGES, { "#/dns": dnsPage });

const RECORD_TYPES = ["A", "AAAA", "CNAME", "MX", "TXT", "SRV", "CAA", "NS"];

async function dnsPage() {
  const zones = h("div", {});
  const { foot, first: list } = await paged("get_list_zone", { limit: 50 }, "zones", (z) => later(() => zoneCard(z)), zones);
  const page = h("div", {}, h("h1", {}, "DNS zones"));
  const add = h("form", { class: "row", id: "add-zone" },
    field("Zone", "zone", { required: true, placeholder: "example.com" }),
    h("button", { type: "submit" }, "Add zone"));
  submit(add, (r) => (["bad_domain", "domain_exists", "domain_taken", "already_exists", "quota_exceeded"].includes(r) ? "zone" : null), async (d) => {
    const z = await api("add_zone", { zone: d.zone });
    await render(undefined, z.status === "reviewing" ? `${z.zone} waits for your provider's review.`
      : `${z.zone} added: delegate it to ${z.nameservers.join(", ")} at its registrar.`);
  });
  page.append(h("div", { class: "card" }, add,
    list.nameservers?.length ? h("p", { class: "muted" }, `Name servers: ${list.nameservers.join(", ")}`) : null));
  if (!list.zones.length) page.append(h("div", { class: "card muted" }, "No zones yet."));
  page.append(zones, foot);
  // A review of a zone shows as it comes.
  followPage(["domain.reviewed"]);
  return page;
}

async function zoneCard(z) {
  const body = h("tbody", {});
  const foot = h("div", { class: "pager" });
  async function load(after) {
    const r = await api("get_list_record", after ? { zone: z.zone, limit: 100, after } : { zone: z.zone, limit: 100 });
    body.append(...r.records.map((x) => recordRow(z, x)));
    foot.replaceChildren(h("span", { class: "muted" }, `serial ${r.serial}`),
      r.next ? h("button", { class: "plain", type: "button", onclick: () => load(r.next).catch((e) => say(explain(e), "error")) }, "More") : "");
  }
  await load(null);
  const typeSelect = h("select", { name: "type" }, RECORD_TYPES.map((t) => h("option", { value: t }, t)));
  const add = h("form", { class: "row", "data-add-record": z.zone },
    field("Name", "name", { required: true, placeholder: "www or @", value: "@" }),
    h("label", {}, "Type", typeSelect),
    field("Content", "content", { required: true, placeholder: "203.0.113.10" }),
    field("TTL", "ttl", { type: "number", min: 60, value: 3600 }),
    field("Priority (MX, SRV)", "prio", { type: "number", min: 0, value: 10 }),
    h("button", { type: "submit" }, "Add record"));
  submit(add, (r) => (["bad_record", "record_managed", "record_conflict", "already_exists", "bad_params"].includes(r) ? "content" : null), async (f) => {
    const p = { zone: z.zone, name: f.name, type: f.type, content: f.content, ttl: Number(f.ttl || 3600) };
    if (f.type === "MX" || f.type === "SRV") p.prio = Number(f.prio || 0);
    const r = await api("add_record", p);
    await render(undefined, `${r.type} record at ${r.name} added.`);
  });
  return h("div", { class: "card", "data-zone": z.zone },
    h("h2", {}, z.zone, " ", badge(z.status), " ",
      h("button", { class: "danger", type: "button", onclick: async () => {
        if (!confirm(`Delete the zone ${z.zone} and all its records?`)) return;
        try {
          await api("delete_zone", { zone: z.zone });
          await render(undefined, `${z.zone} deleted.`);
        } catch (e) {
          say(explain(e), "error");
        }
      } }, "Delete zone")),
    z.reject_reason ? h("p", { class: "field-error" }, `Rejected: ${z.reject_reason}`) : null,
    h("table", {}, h("thead", {}, h("tr", {}, ["Name", "Type", "Content", "TTL", ""].map((t) => h("th", { scope: "col" }, t)))), body),
    foot, add);
}

function recordRow(z, x) {
  const content = x.prio && (x.type === "MX" || x.type === "SRV") ? `${x.prio} ${x.content}` : x.content;
  if (x.managed) {
    return h("tr", { class: "managed", "data-record": `${x.name} ${x.type}` },
      h("td", {}, x.name), h("td", {}, x.type), h("td", {}, h("code", {}, content)), h("td", { class: "hide-narrow" }, x.ttl),
      h("td", {}, h("span", { class: "muted", title: "kept by hostplane for your sites, mail and certificates" }, "managed")));
  }
  const edit = async () => {
    const value = prompt(`New content of ${x.name} ${x.type}`, x.content);
    if (value === null || value === x.content) return;
    try {
      await api("set_record", { recordid: x.recordid, content: value });
      await render(undefined, "Record changed.");
    } catch (e) {
      say(explain(e), "error");
    }
  };
  const remove = async () => {
    if (!confirm(`Delete ${x.name} ${x.type} ${content}?`)) return;
    try {
      await api("delete_record", { recordid: x.recordid });
      await render(undefined, "Record deleted.");
    } catch (e) {
      say(explain(e), "error");
    }
  };
  return h("tr", { "data-record": `${x.name} ${x.type}`, "data-recordid": x.recordid },
    h("td", {}, x.name), h("td", {}, x.type), h("td", {}, h("code", {}, content)), h("td", { class: "hide-narrow" }, x.ttl),
    h("td", {}, h("button", { class: "plain", type: "button", onclick: edit }, "Edit"), " ",
      h("button", { class: "danger", type: "button", onclick: remove }, "Delete")));
}
