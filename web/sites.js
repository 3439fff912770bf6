// The console's sites page: sites by node with their status (live through the change feed), the
// domains they answer for with their certificates and the addresses to point them at, usage.
// Built on app.js's helpers (api, h, field, submit, say); every element from the DOM API.
"use strict";

Object.assign(PAGES, { "#/": sitesPage });

async function sitesPage() {
  const [all, usage] = await Promise.all([api("get_node_list", { limit: 1000 }), api("get_user_stats")]);
  // Sites live on web nodes only; a mail or DNS node is not offered.
  const nodes = { nodes: all.nodes.filter((n) => !n.kinds || n.kinds.includes("web")) };
  const page = h("div", {});
  let usageShown = usageCard(usage);
  page.append(h("h1", {}, "Sites"), usageShown);
  if (!nodes.nodes.length) {
    page.append(h("div", { class: "card" }, me.role === "admin"
      ? "No nodes yet. Add one on the Nodes page, then make sites on it here."
      : "No node is open to you yet. Your provider grants nodes."));
    return page;
  }
  const select = h("select", { name: "nodeid", id: "site-node" },
    nodes.nodes.map((n) => h("option", { value: n.nodeid }, `${n.name} (#${n.nodeid})`)));
  const create = h("form", { class: "row", id: "create-site" },
    h("label", { for: "site-node" }, "Node", select),
    field("Document root (empty: the site's own; or a folder inside it)", "docroot", {}),
    h("button", { type: "submit" }, "Create a site"));
  submit(create, (r) => (["bad_params", "bad_docroot"].includes(r) ? "docroot" : null), async (d) => {
    const properties = d.docroot ? { docroot: d.docroot } : "default";
    const site = await api("create_site", { nodeid: Number(d.nodeid), properties });
    await refresh();
    say(`Site ${site.sitenum} created; it goes live once the node has applied it.`);
  });
  page.append(h("div", { class: "card" }, create));
  const lists = h("div", { id: "site-lists" });
  page.append(lists);
  const shown = live;
  // How many sites of each node are shown: "More" adds a page, and a redraw reads as many again.
  const wanted = new Map();
  async function refresh() {
    if (timer) clearTimeout(timer);
    timer = null;
    const fresh = usageCard(await api("get_user_stats"));
    usageShown.replaceWith(fresh);
    usageShown = fresh;
    const cards = [];
    let waiting = false;
    for (const n of nodes.nodes) {
      const r = await api("get_list_site", { nodeid: n.nodeid, limit: Math.min(1000, wanted.get(n.nodeid) || SITE_PAGE) });
      const first = r[0] || { site: [] };
      if (!first.site.length) continue;
      waiting ||= first.site.some((s) => s.status === "pending");
      cards.push(h("div", { class: "card", "data-node": n.nodeid },
        h("h2", {}, `${n.name} (#${n.nodeid})`),
        ...first.site.map((s) => siteBlock(n, s, refresh)), moreSites(n, first, wanted, refresh)));
    }
    // Working in the lists (typing, or reading the error beside a field after submitting) is not
    // interrupted: they are redrawn once the focus leaves them.
    if (shown !== live) return;
    if (lists.contains(document.activeElement)) {
      // Read again once the focus has left: what was read now may be old by then.
      onceLeft(lists, () => {
        timer = setTimeout(() => refresh().catch(() => {}), 0);
      });
      return;
    }
    // Text typed but not sent (in a form left for a moment) is put back into the new lists.
    const typed = typedIn(lists);
    lists.replaceChildren(...(cards.length ? cards : [h("div", { class: "card muted" }, "No sites yet.")]),
      await waitingDomains(refresh));
    restoreTyped(lists, typed);
    // No timer while a site is pending: the feed tells `site.applied` (or `site.failed`) to the
    // site's owner as soon as the node reports, so an idle console waits in one long poll.
    lists.dataset.waiting = waiting ? "yes" : "no";
  }
  await refresh();
  follow(() => refresh().catch(() => {}));
  return page;
}

const SITE_PAGE = 50;

// The footer of a node's sites: how many of how many, and "More" while the list has a next page.
function moreSites(node, first, wanted, refresh) {
  const foot = h("div", { class: "pager" });
  let count = first.site.length;
  let next = first.next;
  const draw = () => foot.replaceChildren(
    h("span", { class: "muted" }, `${count} of ${first.total}${first.total_exact === false ? " (about)" : ""} sites`),
    next ? h("button", { class: "plain", type: "button", "data-more-sites": node.nodeid, onclick: more }, "More") : "");
  async function more() {
    try {
      const r = (await api("get_list_site", { nodeid: node.nodeid, limit: SITE_PAGE, after: next }))[0];
      foot.before(...r.site.map((s) => siteBlock(node, s, refresh)));
      count += r.site.length;
      next = r.next;
      wanted.set(node.nodeid, count);
      draw();
    } catch (e) {
      say(explain(e), "error");
    }
  }
  draw();
  return foot;
}

// A domain's certificate state, in words a phone shows too (no hover): issued (until when),
// pending (what it waits for), failed (why; it is tried again later), or none (HTTP only).
function certBadge(c) {
  if (!c || c.cert === "none") return "";
  const b = badge(c.cert === "issued" ? "https" : c.cert);
  const note = c.cert === "issued" ? `certificate until ${c.not_after.slice(0, 10)}`
    : c.cert === "pending" ? "certificate on its way: the CA checks the name once it points at the node"
    : `no certificate yet (tried again later): ${c.cert_error || "the CA refused it"}`;
  return h("span", { class: "cert", "data-cert": c.cert }, b, " ",
    h("span", { class: c.cert === "failed" ? "field-error" : "muted" }, note));
}

function usageCard(u) {
  const item = (name, x) => h("div", { class: "stat" }, h("span", { class: "muted" }, name), h("b", {}, `${x.used} / ${x.limit}`));
  return h("div", { class: "grid", id: "usage" }, item("Sites", u.sites), item("Domains", u.domains),
    item("Mail domains", u.mail_domains), item("Mailboxes", u.mailboxes));
}

// The caller's domains under review or rejected (not yet served); a rejected one can be sent back.
async function waitingDomains(refresh) {
  const [reviewing, rejected] = await Promise.all([
    api("get_list_domain", { status: "reviewing", limit: 100 }),
    api("get_list_domain", { status: "rejected", limit: 100 }),
  ]);
  if (!reviewing.domainlist.length && !rejected.domainlist.length) return "";
  const reasons = new Map((rejected.review || []).map((r) => [r.domain, r.reject_reason]));
  return h("div", { class: "card", id: "waiting-domains" }, h("h2", {}, "Domains not served yet"),
    table(["Domain", "State", ""], [
      ...reviewing.domainlist.map((d) => h("tr", {}, h("td", {}, d), h("td", {}, badge("reviewing")), h("td", {}))),
      ...rejected.domainlist.map((d) => h("tr", { "data-rejected": d }, h("td", {}, d),
        h("td", {}, badge("rejected"), reasons.get(d) ? h("div", { class: "field-error" }, reasons.get(d)) : null),
        h("td", {}, h("button", { class: "plain", type: "button", onclick: async () => {
          try {
            await api("resubmit_domain", { domain: d });
            await refresh();
            say(`${d} waits for review again.`);
          } catch (e) {
            say(explain(e), "error");
          }
        } }, "Send for review again")))),
    ]));
}

function siteBlock(node, s, refresh) {
  const nodeid = node.nodeid;
  const add = h("form", { class: "row", "data-add-domain": s.siteid },
    field("Add a domain", "domain", { placeholder: "www.example.com", required: true }),
    h("label", {}, "HTTPS", h("input", { type: "checkbox", name: "https", value: "yes", checked: true })),
    h("label", {}, "Also *.domain", h("input", { type: "checkbox", name: "wildcard", value: "yes" })),
    h("button", { type: "submit" }, "Add"));
  submit(add, (r) => (["bad_domain", "domain_exists", "domain_taken", "quota_exceeded", "bad_params", "zone_required"].includes(r) ? "domain" : null), async (d) => {
    const r = await api("add_domain", { nodeid, siteid: s.siteid, domain: d.domain, https: !!d.https, wildcard: !!d.wildcard });
    add.reset();
    await refresh();
    say(r.status === "reviewing" ? `${r.domain} waits for your provider's review.` : `${r.domain} added.`);
  });
  const remove = async () => {
    if (!confirm(`Delete ${s.sitenum} and its domains?`)) return;
    try {
      await api("delete_site", { nodeid, siteid: s.siteid });
      await refresh();
    } catch (e) {
      say(explain(e), "error");
    }
  };
  const certs = new Map((s.certificates || []).map((c) => [c.domain, c]));
  const target = [node.ipv4, node.ipv6].filter(Boolean).join(" and ") || node.address;
  const domains = s.servername.map((d) =>
    h("li", {}, h("code", {}, d), " ", certBadge(certs.get(d)), " ",
      h("button", { class: "plain", type: "button", "aria-label": `Delete ${d}`, onclick: async () => {
        if (!confirm(`Delete ${d}? The site stops answering for it.`)) return;
        try {
          await api("delete_domain", { domain: d });
          await refresh();
        } catch (e) {
          say(explain(e), "error");
        }
      } }, "Delete")));
  return h("section", { class: "site", "data-site": s.siteid, "aria-label": s.sitenum },
    h("h2", {}, s.sitenum, " ", badge(s.status), " ",
      h("button", { class: "danger", type: "button", onclick: remove }, "Delete site")),
    s.status === "error" ? h("p", { class: "field-error" }, `The node reported: ${s.error}`) : null,
    s.status === "pending" ? h("p", { class: "muted progress" }, "The node is applying the last change; this page shows when it is done.") : null,
    h("p", { class: "muted" }, "Document root: ", h("code", {}, s.docroot),
      s.owner !== me.login ? ` · owner ${s.owner}` : ""),
    s.servername.length ? h("p", { class: "muted" }, `Point these names at ${target} (A/AAAA), or host their zone on the DNS page.`) : null,
    h("ul", { class: "domains" }, domains),
    add);
}
