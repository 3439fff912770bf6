// The console's admin pages: users (search, limits, roles, invites, deletion), nodes (kinds,
// region, addresses, tokens with the agent's setup command, grants by login), review, audit and
// statistics. Built on app.js's helpers.
"use strict";

Object.assign(PAGES, {
  "#/admin/users": usersPage,
  "#/admin/nodes": nodesPage,
  "#/admin/review": reviewPage,
  "#/admin/audit": auditPage,
  "#/admin/stats": statsPage,
});

async function usersPage(offset = 0, q = "") {
  const limit = 20;
  const list = await api("get_list_user", { q, limit, offset });
  const search = h("form", { class: "row", role: "search", id: "user-search" },
    field("Search login or e-mail", "q", { value: q }), h("button", { type: "submit" }, "Search"));
  submit(search, () => null, async (d) => swap(await usersPage(0, d.q)));
  const invite = h("form", { class: "row", id: "add-invite" },
    field("Invite valid for (hours)", "hours", { type: "number", min: 1, max: 720, value: 72 }),
    h("button", { type: "submit" }, "Make an invite code"));
  const shown = h("div", {});
  submit(invite, (r) => ({ bad_params: "hours" })[r], async (d) => {
    const i = await api("add_invite", { expires_in_hours: Number(d.hours || 72) });
    shown.replaceChildren(h("p", {}, `Invite code, shown only now (until ${i.expires_at}):`), h("div", { class: "secret" }, i.invite), copyButton(i.invite));
  });
  const role = h("select", { name: "role", id: "new-user-role" }, h("option", { value: "user" }, "user"), h("option", { value: "admin" }, "admin"));
  const adduser = h("form", { class: "row", id: "add-user" },
    field("Login", "login", { required: true }), field("E-mail", "email", { required: true, type: "email" }),
    field("Password", "password", { required: true, type: "password", autocomplete: "new-password" }),
    h("label", { for: "new-user-role" }, "Role", role),
    h("button", { type: "submit" }, "Add account"));
  submit(adduser, (r) => ({ bad_login: "login", bad_email: "email", bad_password: "password" })[r], async (d) => {
    if (d.role === "admin" && !confirm(`Make ${d.login} an admin, with every right over every account?`)) return;
    const u = await api("adduser", { login: d.login, email: d.email, password: d.password, role: d.role });
    await render(undefined, `${u.login || d.login} added.`);
  });
  const page = h("div", { id: "users-page" }, h("h1", {}, "Users"), h("div", { class: "card" }, search),
    h("div", { class: "card" }, adduser), h("div", { class: "card" }, invite, shown));
  const swap = (el) => page.replaceWith(el);
  page.append(h("div", { class: "card" },
    table(["Login", "Role", "Sites", "Domains", "Limits", ""], list.users.map((u) => userRow(u))),
    pager(list.total, offset, limit, async (o) => swap(await usersPage(o, q)))));
  return page;
}

function userRow(u) {
  const self = u.userid === me.userid;
  const setUser = (params, done, question) => act(() => api("set_user", { userid: u.userid, ...params }), done, question);
  // The account's limits (empty: the service's default) and whether its domains wait for review.
  const limits = h("form", { class: "stack", hidden: true, "data-limits-form": u.login },
    ...[["max_sites", "Sites"], ["max_domains", "Domains"], ["max_mail_domains", "Mail domains"], ["max_mailboxes", "Mailboxes"]]
      .map(([name, label]) => field(`Most ${label.toLowerCase()} (empty: default)`, name, { type: "number", value: u[name] ?? "" })),
    h("label", {}, "Domains wait for review", h("input", { type: "checkbox", name: "review_domains", value: "yes", checked: !!u.review_domains })),
    h("button", { type: "submit" }, "Set limits"));
  submit(limits, () => null, async (d) => {
    const p = { userid: u.userid, review_domains: !!d.review_domains };
    for (const k of ["max_sites", "max_domains", "max_mail_domains", "max_mailboxes"]) p[k] = d[k] === "" ? null : Number(d[k]);
    await api("set_user", p);
    await render(undefined, `Limits of ${u.login} set.`);
  });
  return h("tr", { "data-user": u.login },
    h("td", {}, u.login, u.disabled ? " (disabled)" : "", h("div", { class: "muted" }, u.email.join(", "))),
    h("td", {}, u.role),
    h("td", {}, u.sites), h("td", {}, u.domains),
    h("td", { class: "hide-narrow" }, `sites ${u.max_sites ?? "default"}, domains ${u.max_domains ?? "default"}`),
    h("td", {},
      h("button", { class: u.disabled ? "plain" : "danger", type: "button", "data-toggle-disabled": u.login,
        onclick: setUser({ disabled: !u.disabled }, `${u.login} ${u.disabled ? "enabled" : "disabled"}.`,
          u.disabled ? null : self ? "Disable your own account? You will be signed out."
            : `Disable ${u.login}? They are signed out and their sites stay as they are.`) },
        u.disabled ? "Enable" : "Disable"), " ",
      h("button", { class: "plain", type: "button", "data-toggle-role": u.login,
        onclick: setUser({ role: u.role === "admin" ? "user" : "admin" }, "Role changed.",
          u.role !== "admin" ? `Make ${u.login} an admin, with every right over every account?`
            : self ? "Give up your own admin rights?" : null) },
        u.role === "admin" ? "Make user" : "Make admin"), " ",
      h("button", { class: "plain", type: "button", "data-limits": u.login, onclick: () => {
        limits.hidden = !limits.hidden;
      } }, "Limits"), " ",
      self ? null : h("button", { class: "danger", type: "button", "data-delete-user": u.login,
        onclick: act(() => api("delete_user", { userid: u.userid }), `${u.login} deleted.`,
          `Delete ${u.login} with all their sites, domains and mail?`) }, "Delete"), limits));
}

// The agent's setup on a node, for a token shown once, as the README gives it: a mail node's
// agent also reloads Postfix and Dovecot, which read the certificate it writes.
function agentSetup(node, token) {
  const kinds = node.kinds || ["web"];
  const reload = kinds.includes("mail") ? " --reload-cmd 'nginx -s reload && postfix reload && doveadm reload'" : "";
  const command = "mkdir -p /etc/hostplane /etc/nginx/hostplane\n" +
    `echo '${token}' > /etc/hostplane/token && chmod 600 /etc/hostplane/token\n` +
    `hostplane agent --api ${location.origin} --token-file /etc/hostplane/token --nginx-dir /etc/nginx/hostplane --listen 80 --listen-tls 443${reload}`;
  const notes = [
    "hostplane is this service's own binary (target/release/hostplane where it was built), copied to the node.",
    "nginx.conf includes the agent's files: include /etc/nginx/hostplane/*.conf; inside http { }.",
  ];
  if (location.protocol !== "https:") {
    notes.push("The token travels with every request: across a network, give the agent an https:// address of this service (behind a TLS proxy), and --ca-file for a private CA.");
  }
  if (kinds.includes("mail")) {
    notes.push(`Postfix and Dovecot read the database: make their configuration with hostplane mail-config --region ${node.region || "default"} (see the README, "Connecting Postfix, Dovecot and OpenDKIM").`);
  }
  return h("div", { class: "card", id: "node-token", "data-keep": "" },
    h("p", {}, `Node ${node.name} (#${node.nodeid}): its agent token, shown only now, and the agent's setup on the node:`),
    h("div", { class: "secret" }, token), copyButton(token),
    h("pre", { class: "secret" }, command), copyButton(command),
    h("ul", { class: "muted" }, notes.map((t) => h("li", {}, t))));
}

async function nodesPage() {
  const add = h("form", { class: "row", id: "add-node" },
    field("Name", "name", { required: true, placeholder: "web1 or mx1.example.net" }),
    field("Address", "address", { required: true }),
    field("Region", "region", { placeholder: "default" }),
    field("Public IPv4", "ipv4", {}), field("Public IPv6", "ipv6", {}),
    h("fieldset", {}, h("legend", {}, "Serves"),
      ["web", "mail", "dns"].map((k) => h("label", {}, h("input", { type: "checkbox", name: `kind:${k}`, value: k, checked: k === "web" }), k))),
    h("label", {}, "Public", h("input", { type: "checkbox", name: "public", value: "yes" })),
    h("button", { type: "submit" }, "Add node"));
  submit(add, (r) => ({ bad_params: "name", already_exists: "name", domain_taken: "name" })[r], async (d) => {
    const p = { name: d.name, address: d.address, public: !!d.public,
      kinds: Object.keys(d).filter((k) => k.startsWith("kind:")).map((k) => d[k]) };
    for (const k of ["region", "ipv4", "ipv6"]) if (d[k]) p[k] = d[k];
    const n = await api("add_node", p);
    await render();
    document.getElementById("main").prepend(agentSetup(n, n.token));
  });
  const grant = h("form", { class: "row", id: "grant-node" },
    field("User (login)", "login", { required: true }), field("Node id", "nodeid", { required: true, type: "number" }),
    h("button", { type: "submit" }, "Grant"), h("button", { type: "button", class: "plain", onclick: async () => {
      const d = Object.fromEntries(new FormData(grant).entries());
      if (!confirm(`Take node ${d.nodeid} away from ${d.login}?`)) return;
      try {
        await api("revoke_node", { userid: await userIdOf(d.login), nodeid: Number(d.nodeid) });
        say(`${d.login} may no longer use node ${d.nodeid}.`);
      } catch (e) {
        say(explain(e), "error");
      }
    } }, "Revoke"));
  submit(grant, (r) => ({ not_found: "login" })[r], async (d) => {
    await api("grant_node", { userid: await userIdOf(d.login), nodeid: Number(d.nodeid) });
    say(`${d.login} may use node ${d.nodeid}.`);
  });
  const list = table(["Node", "Serves", "Sync", "Applied / revision", "Last seen", ""], []);
  const { foot } = await paged("get_node_list", { limit: 50 }, "nodes", statusRow, list.tBodies[0]);
  // A node's report (applied, or an error) shows as it comes.
  followPage(["node."]);
  return h("div", {}, h("h1", {}, "Nodes"), h("div", { class: "card" }, add), h("div", { class: "card" }, grant),
    h("div", { class: "card" }, list, foot));
}

// A node's row: its name at once, its sync state once get_node_status has answered.
function statusRow(n) {
  const slot = h("tr", { "data-node": n.nodeid }, h("td", { colspan: 6, class: "muted" }, `${n.name} (#${n.nodeid})…`));
  api("get_node_status", { nodeid: n.nodeid }).catch(() => null).then((s) => slot.replaceWith(nodeRow(n, s)));
  return slot;
}

// The user id of a login (an exact match of the user search).
async function userIdOf(login) {
  const r = await api("get_list_user", { q: login, limit: 100 });
  const u = r.users.find((x) => x.login === login.trim().toLowerCase());
  if (!u) throw new ApiError("not_found", `no user ${login}`);
  return u.userid;
}

function nodeRow(n, s) {
  // A node whose agent never reported is not "in sync", whatever its revision.
  const sync = !s ? "?" : !s.last_seen ? badge("never connected") : badge(s.in_sync ? "ok" : s.last_error ? "error" : "pending");
  return h("tr", { "data-node": n.nodeid },
    h("td", {}, `${n.name} (#${n.nodeid})`, h("div", { class: "muted" }, [n.address, n.ipv4, n.ipv6].filter(Boolean).join(", "))),
    h("td", {}, `${(n.kinds || ["web"]).join(", ")} · ${n.region || "default"}`,
      h("div", { class: "muted", "data-public": String(!!n.public) }, n.public ? "public: open to every user" : "private: granted users only")),
    h("td", {}, sync, s?.last_error ? h("div", { class: "field-error" }, s.last_error) : null),
    h("td", {}, s ? `${s.applied_revision} / ${s.revision}` : ""),
    h("td", { class: "hide-narrow" }, s?.last_seen || "never"),
    h("td", {},
      h("button", { class: "plain", type: "button", onclick: async () => {
        const v4 = prompt(`Public IPv4 of ${n.name} (empty: none)`, n.ipv4 || "");
        if (v4 === null) return;
        const v6 = prompt(`Public IPv6 of ${n.name} (empty: none)`, n.ipv6 || "");
        if (v6 === null) return;
        await act(() => api("set_node", { nodeid: n.nodeid, ipv4: v4.trim(), ipv6: v6.trim() }), "Addresses set.")();
      } }, "Addresses"), " ",
      h("button", { class: "plain", type: "button", "data-toggle-public": n.nodeid, onclick: act(
        () => api("set_node", { nodeid: n.nodeid, public: !n.public }),
        n.public ? `${n.name} is open only to users granted it.` : `${n.name} is open to every user.`,
        n.public ? `Make ${n.name} private? Only users granted it may then make sites on it (sites already there stay).`
          : `Make ${n.name} public? Every user may then make sites on it.`) }, n.public ? "Make private" : "Make public"), " ",
      h("button", { class: "plain", type: "button", "data-rotate-token": n.nodeid, onclick: async () => {
        if (!confirm(`Give ${n.name} a new token? Its agent stops working until it has the new one.`)) return;
        try {
          const t = await api("rotate_node_token", { nodeid: n.nodeid });
          await render();
          document.getElementById("main").prepend(agentSetup(n, t.token));
        } catch (e) {
          say(explain(e), "error");
        }
      } }, "New token"), " ",
      h("button", { class: "danger", type: "button",
        onclick: act(() => api("delete_node", { nodeid: n.nodeid }), `${n.name} deleted.`, `Delete node ${n.name}?`) }, "Delete")));
}

async function reviewPage() {
  const decide = (domain, audit_status) => async () => {
    const p = { domain, audit_status };
    if (audit_status === "rejected") {
      const why = prompt(`Why is ${domain} rejected?`);
      if (!why) return;
      p.reject_reason = why;
    }
    await act(() => api("review_domain", p), `${domain} ${audit_status}.`)();
  };
  const row = (d) => h("tr", { "data-review": d }, h("td", {}, d), h("td", {},
    h("button", { type: "button", onclick: decide(d, "passed") }, "Pass"), " ",
    h("button", { type: "button", class: "danger", onclick: decide(d, "rejected") }, "Reject")));
  // Each queue a page at a time, with its total and "More".
  const queue = async (title, action, key, name) => {
    const list = table(["Domain", ""], []);
    const { foot, first } = await paged(action, { status: "reviewing", limit: 50 }, key, (x) => row(name(x)), list.tBodies[0]);
    return first[key].length ? h("div", { class: "card" }, h("h2", {}, title), list, foot) : null;
  };
  const queues = (await Promise.all([
    queue("Domains of sites", "get_list_domain", "domainlist", (d) => d),
    queue("Mail domains", "get_list_mail_domain", "domains", (d) => d.domain),
  ])).filter(Boolean);
  // A domain or zone that comes to wait shows as it comes.
  followPage(["domain.added", "mail_domain.added", "zone.added"]);
  return h("div", {}, h("h1", {}, "Domains waiting for review"),
    ...(queues.length ? queues : [h("div", { class: "card" }, h("p", { class: "muted" }, "Nothing waits."))]));
}

async function auditPage(before = null, action = "") {
  const p = { limit: 50 };
  if (before) p.before = before;
  if (action) p.action = action;
  const log = await api("get_audit_log", p);
  const filter = h("form", { class: "row", id: "audit-filter" }, field("Action", "action", { value: action }),
    h("button", { type: "submit" }, "Filter"));
  const page = h("div", {}, h("h1", {}, "Audit log"), h("div", { class: "card" }, filter));
  submit(filter, () => null, async (d) => page.replaceWith(await auditPage(null, d.action)));
  page.append(h("div", { class: "card" },
    table(["When", "Who", "Action", "Object"], log.entries.map((e) =>
      h("tr", {}, h("td", {}, e.at), h("td", {}, e.login || "—"), h("td", {}, e.action), h("td", {}, e.object || "")))),
    h("p", { class: "muted" }, `${log.total}${log.total_exact === false ? " (about)" : ""} entries`),
    log.next ? h("button", { class: "plain", type: "button", onclick: async () => page.replaceWith(await auditPage(log.next, action)) }, "Older") : null));
  return page;
}

async function statsPage() {
  const s = await api("get_stats");
  const stat = (name, v) => h("div", { class: "stat" }, h("span", { class: "muted" }, name), h("b", {}, v));
  return h("div", {}, h("h1", {}, "Statistics"), h("div", { class: "grid" },
    stat("Users", s.users), stat("Active sessions", s.active_sessions), stat("Nodes in sync", `${s.nodes_in_sync} / ${s.nodes}`),
    stat("Sites", s.sites), stat("Domains", s.domains.active), stat("Waiting for review", s.domains.reviewing + s.mail_domains.reviewing),
    stat("Mail domains", s.mail_domains.active), stat("Mailboxes", s.mailboxes), stat("Mail used", `${(s.mail_bytes_used / 1048576).toFixed(1)} MB`),
    stat("Changes today", s.changes_today), stat("Webhooks pending", s.webhook_deliveries_pending), stat("Webhooks failed", s.webhook_deliveries_failed)));
}
