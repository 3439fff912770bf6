// The console's pages for integrations: API keys (networks, limits, expiry, revocation) and
// webhooks with their deliveries.
// Built on app.js's helpers (api, h, field, submit, say); every element from the DOM API.
"use strict";

Object.assign(PAGES, { "#/keys": keysPage, "#/webhooks": webhooksPage });

async function keysPage() {
  const body = h("tbody", {});
  const { foot } = await paged("get_list_api_key", {}, "keys", keyRow, body);
  const shown = h("div", { id: "new-key" });
  const form = h("form", { class: "row", id: "create-key" },
    field("Name", "name", { placeholder: "billing" }),
    field("Actions (comma-separated, empty: all)", "actions"),
    field("Expires in", "expires", { placeholder: "90d" }),
    field("Only from networks (comma-separated)", "cidr", { placeholder: "203.0.113.0/24" }),
    field("Requests per hour", "rate_limit", { type: "number", min: 1 }),
    h("label", {}, "Read-only", h("input", { type: "checkbox", name: "read_only", value: "yes" })),
    h("button", { type: "submit" }, "Create key"));
  submit(form, () => null, async (d) => {
    const p = { name: d.name || "" };
    if (d.actions) p.actions = d.actions.split(",").map((a) => a.trim()).filter(Boolean);
    if (d.expires) p.expires = d.expires;
    if (d.cidr) p.cidr = d.cidr.split(",").map((c) => c.trim()).filter(Boolean);
    if (d.rate_limit) p.rate_limit = Number(d.rate_limit);
    if (d.read_only) p.read_only = true;
    const k = await api("create_api_key", p);
    await render();
    document.getElementById("new-key").replaceChildren(h("div", { class: "card" },
      h("p", {}, "Your new key. It is shown only now:"), h("div", { class: "secret" }, k.key), copyButton(k.key)));
  });
  return h("div", {}, h("h1", {}, "API keys"), shown, h("div", { class: "card" }, form),
    h("div", { class: "card" }, h("table", {}, h("thead", {}, h("tr", {},
      ["Name", "Key", "Scope", "Expires", "Last used", ""].map((t) => h("th", { scope: "col" }, t)))), body), foot));
}

function keyRow(k) {
  return h("tr", {}, h("td", {}, k.name || "—"), h("td", {}, h("code", {}, `${k.prefix}…`)),
    h("td", {}, [k.read_only ? "read-only" : "read-write", k.actions ? k.actions.join(", ") : "all actions"].join("; ")),
    h("td", {}, k.expires_at || "never"),
    h("td", { class: "hide-narrow" }, k.last_used_at ? `${k.last_used_at} from ${k.last_used_ip}` : "never"),
    h("td", {}, h("button", { class: "danger", type: "button", onclick: async () => {
      if (!confirm(`Revoke the key ${k.name || k.prefix}? Scripts using it stop working.`)) return;
      try { await api("revoke_api_key", { keyid: k.keyid }); render(); } catch (e) { say(explain(e), "error"); }
    } }, "Revoke")));
}

const EVENTS = ["site.created", "site.deleted", "domain.added", "domain.deleted", "domain.reviewed",
  "mail_domain.added", "mail_domain.deleted", "mailbox.created", "mailbox.deleted", "user.created",
  "node.applied", "node.error"];

async function webhooksPage() {
  const form = h("form", { class: "stack", id: "add-webhook" },
    field("URL", "url", { type: "url", required: true, placeholder: "https://billing.example.com/hook" }),
    h("fieldset", {}, h("legend", {}, "Events"),
      EVENTS.map((e) => h("label", {}, h("input", { type: "checkbox", name: `ev:${e}`, value: e }), e))),
    h("button", { type: "submit" }, "Add webhook"));
  submit(form, (r) => ({ bad_url: "url" })[r], async (d) => {
    const events = Object.keys(d).filter((k) => k.startsWith("ev:")).map((k) => d[k]);
    const w = await api("add_webhook", { url: d.url, events });
    await render();
    if (w.secret) document.getElementById("main").prepend(h("div", { class: "card" },
      h("p", {}, "The signing secret, shown only now:"), h("div", { class: "secret" }, w.secret), copyButton(w.secret)));
  });
  const hooks = h("div", {});
  const { foot } = await paged("get_list_webhook", {}, "webhooks", (w) => later(() => webhookCard(w)), hooks);
  return h("div", {}, h("h1", {}, "Webhooks"), h("div", { class: "card" }, form), hooks, foot);
}

// A webhook with its latest deliveries.
async function webhookCard(w) {
  const body = h("tbody", {});
  const { foot } = await paged("get_webhook_deliveries", { webhookid: w.webhookid, limit: 5 }, "deliveries", (x) =>
    h("tr", {}, h("td", {}, x.event), h("td", {}, badge(x.state)), h("td", {}, x.attempts),
      h("td", {}, x.last_error || (x.last_status ? `HTTP ${x.last_status}` : "—"))), body);
  return h("div", { class: "card", "data-webhook": w.url }, h("h2", {}, w.url),
    h("p", { class: "muted" }, w.events.join(", ")),
    h("table", {}, h("thead", {}, h("tr", {}, ["Event", "State", "Attempts", "Last answer"].map((t) => h("th", { scope: "col" }, t)))), body),
    foot,
    h("button", { class: "danger", type: "button", onclick: async () => {
      if (!confirm(`Delete the webhook to ${w.url}?`)) return;
      try { await api("delete_webhook", { webhookid: w.webhookid }); render(); } catch (e) { say(explain(e), "error"); }
    } }, "Delete webhook"));
}
