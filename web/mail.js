// The console's mail pages: mail domains with their mailboxes (quota, password, forwarding,
// autoreply, app passwords), aliases, BCC, transports, DKIM keys and the DNS records to publish.
// Built on app.js's helpers (api, h, field, submit, say); every element from the DOM API.
"use strict";

Object.assign(PAGES, { "#/mail": mailPage });

// A table of a list, a page at a time (see `paged`).
async function listed(action, params, key, row, headers) {
  const body = h("tbody", {});
  const { foot } = await paged(action, params, key, row, body);
  return h("div", {}, h("table", {}, h("thead", {}, h("tr", {}, headers.map((t) => h("th", { scope: "col" }, t)))), body), foot);
}

async function mailPage() {
  const cards = h("div", {});
  const { foot, first: list } = await paged("get_list_mail_domain", { limit: 10 }, "domains",
    (d) => later(() => mailDomainCard(d)), cards);
  const page = h("div", {}, h("h1", {}, "Mail"));
  const add = h("form", { class: "row", id: "add-mail-domain" },
    field("Mail domain", "domain", { required: true, placeholder: "example.com" }),
    field("Region", "region", { placeholder: "default" }),
    h("button", { type: "submit" }, "Add"));
  submit(add, (r) => (["bad_domain", "domain_exists", "domain_taken", "quota_exceeded"].includes(r) ? "domain"
    : r === "no_region" ? "region" : null), async (d) => {
    const p = { domain: d.domain };
    if (d.region) p.region = d.region;
    const m = await api("add_mail_domain", p).catch((e) => {
      // The one thing add_mail_domain finds missing for a customer: a mail server in the region.
      if (e instanceof ApiError && e.reason === "not_found") {
        throw new ApiError("no_region", `No mail server takes mail for region "${p.region || "default"}". Leave it empty for the default, or ask your provider which regions there are.`);
      }
      throw e;
    });
    await render(undefined, m.status === "reviewing" ? `${m.domain} waits for your provider's review.` : `${m.domain} added.`);
  });
  page.append(h("div", { class: "card" }, add));
  if (!list.domains.length) page.append(h("div", { class: "card muted" }, "No mail domains yet."));
  page.append(cards, foot);
  // A review of a mail domain shows as it comes.
  followPage(["domain.reviewed"]);
  return page;
}

async function mailDomainCard(d) {
  let dkim = null;
  try {
    dkim = await api("get_dkim", { domain: d.domain });
  } catch (e) {
    /* no key yet */
  }
  const card = h("div", { class: "card", "data-mail-domain": d.domain });
  const head = h("h2", {}, d.domain, " ", badge(d.status || "active"), d.disabled ? " (disabled)" : "", " ",
    h("button", { class: "plain", type: "button", onclick: act(() => api("set_mail_domain", { domain: d.domain, disabled: !d.disabled }),
      `${d.domain} ${d.disabled ? "enabled" : "disabled"}.`,
      d.disabled ? null : `Disable ${d.domain}? Its mailboxes stop receiving mail and signing in.`) }, d.disabled ? "Enable" : "Disable"), " ",
    h("button", { class: "danger", type: "button", onclick: async () => {
      if (!confirm(`Delete ${d.domain} with its mailboxes and aliases?`)) return;
      await act(() => api("delete_mail_domain", { domain: d.domain, force: true }), `${d.domain} deleted.`)();
    } }, "Delete"));
  card.append(head);
  // The domain's own limits: how many mailboxes, and the total of their quotas (0: none).
  const limits = h("form", { class: "row", "data-mail-limits": d.domain },
    field("Most mailboxes (0: no limit)", "max_mailboxes", { type: "number", min: 0, value: d.max_mailboxes || 0 }),
    field("Total quota (MB, 0: none)", "quota", { type: "number", min: 0, value: Math.round((d.quota_bytes || 0) / 1048576) }),
    h("button", { type: "submit", class: "plain" }, "Set limits"));
  submit(limits, (r) => ({ quota_exceeded: "quota", bad_params: "max_mailboxes" })[r], async (f) => {
    await api("set_mail_domain", { domain: d.domain, max_mailboxes: Number(f.max_mailboxes || 0), quota_bytes: Number(f.quota || 0) * 1048576 });
    await render(undefined, `Limits of ${d.domain} set.`);
  });
  card.append(limits);
  if (d.reject_reason) card.append(h("p", { class: "field-error" }, `Rejected: ${d.reject_reason}`));

  card.append(h("h3", {}, "Mailboxes"), await listed("get_list_mailbox", { domain: d.domain, limit: 50 }, "mailboxes",
    (m) => mailboxRow(m), ["Mailbox", "Used", "Forwarding", ""]));
  const addBox = h("form", { class: "row", "data-add-mailbox": d.domain },
    field("New mailbox (local part)", "local", { required: true }),
    field("Password", "password", { type: "password", required: true, autocomplete: "new-password" }),
    field("Quota (MB, 0: none)", "quota", { type: "number", min: 0, value: 0 }),
    h("button", { type: "submit" }, "Add mailbox"));
  submit(addBox, (r) => ({ bad_password: "password", bad_email: "local", already_exists: "local", quota_exceeded: "quota" })[r], async (f) => {
    await api("add_mailbox", { domain: d.domain, local: f.local, password: f.password, quota_bytes: Number(f.quota || 0) * 1048576 });
    await render(undefined, `${f.local}@${d.domain} created.`);
  });
  card.append(addBox);

  card.append(h("h3", {}, "Aliases"), await listed("get_list_alias", { domain: d.domain, limit: 50 }, "aliases",
    (a) => h("tr", { "data-alias": a.source }, h("td", {}, a.source), h("td", {}, a.destination.join(", ")),
      h("td", {}, h("button", { class: "danger", type: "button", onclick: act(() => api("delete_alias", { source: a.source }), `${a.source} deleted.`,
        `Delete the alias ${a.source}? Mail to it is refused from then on.`) }, "Delete"))),
    ["Alias", "Goes to", ""]));
  const addAlias = h("form", { class: "row", "data-add-alias": d.domain },
    field("Alias (or @domain for a catch-all)", "source", { required: true, placeholder: `sales@${d.domain}` }),
    field("Forward to", "destination", { required: true }),
    h("button", { type: "submit" }, "Add alias"));
  submit(addAlias, (r) => ({ bad_email: "source", already_exists: "source" })[r], async (f) => {
    await api("add_alias", { source: f.source, destination: f.destination });
    await render(undefined, `${f.source} added.`);
  });
  card.append(addAlias);

  card.append(h("h3", {}, "Copies (BCC) and transports"));
  card.append(await routesTable(d, "bcc", "BCC: a copy of all mail for", "archive@example.net"));
  card.append(await routesTable(d, "transport", "Transport: mail for", "smtp:[relay.example.net]:2525"));
  card.append(h("button", { class: "plain", type: "button", onclick: async () => {
    if (!confirm(`Remove every transport of ${d.domain} and deliver to its mailboxes again?`)) return;
    await act(() => api("reset_transports", { domain: d.domain }), "Transports reset.")();
  } }, "Reset transports"));

  card.append(h("h3", {}, "DKIM"), dkimBlock(d, dkim));
  card.append(h("h3", {}, "DNS records to publish"), await mailDnsTable(d));
  return card;
}

function mailboxRow(m) {
  const edit = h("form", { class: "row", hidden: true, "data-edit-mailbox": m.address },
    field("Quota (MB, 0: none)", "quota", { type: "number", min: 0, value: Math.round((m.quota_bytes || 0) / 1048576) }),
    field("Forward to (comma-separated)", "forward", { value: (m.forward_to || []).join(", ") }),
    field("New password (empty: keep)", "password", { type: "password", autocomplete: "new-password" }),
    h("label", {}, "May sign in (IMAP, SMTP)", h("input", { type: "checkbox", name: "can_login", value: "yes", checked: m.can_login !== false })),
    h("label", {}, "Disabled", h("input", { type: "checkbox", name: "disabled", value: "yes", checked: m.disabled })),
    h("button", { type: "submit" }, "Save"));
  submit(edit, (r) => ({ bad_password: "password", bad_email: "forward", quota_exceeded: "quota" })[r], async (f) => {
    const p = { address: m.address, quota_bytes: Number(f.quota || 0) * 1048576, disabled: !!f.disabled, can_login: !!f.can_login,
      forward_to: f.forward.split(",").map((x) => x.trim()).filter(Boolean) };
    if (f.password) p.password = f.password;
    await api("set_mailbox", p);
    await render(undefined, `${m.address} saved.`);
  });
  const extra = h("div", { hidden: true, "data-mailbox-extra": m.address });
  const toggle = async () => {
    edit.hidden = !edit.hidden;
    extra.hidden = edit.hidden;
    if (!extra.hidden && !extra.childElementCount) extra.append(await autoreplyForm(m), await appPasswords(m));
  };
  return h("tr", { "data-mailbox": m.address },
    h("td", {}, m.address, m.disabled ? " (disabled)" : "", edit, extra),
    h("td", {}, quotaBar(m)),
    h("td", { class: "hide-narrow" }, (m.forward_to || []).join(", ")),
    h("td", {},
      h("button", { class: "plain", type: "button", "aria-label": `Edit ${m.address}`, onclick: () => toggle().catch((e) => say(explain(e), "error")) }, "Edit"), " ",
      h("button", { class: "danger", type: "button", onclick: async () => {
        if (!confirm(`Delete ${m.address}?`)) return;
        await act(() => api("delete_mailbox", { address: m.address }), `${m.address} deleted.`)();
      } }, "Delete")));
}

async function autoreplyForm(m) {
  let current = null;
  try {
    current = await api("get_autoreply", { address: m.address });
  } catch (e) {
    if (!(e instanceof ApiError) || e.reason !== "not_found") throw e;
  }
  const form = h("form", { class: "stack", "data-autoreply": m.address },
    h("b", {}, "Autoreply"),
    field("Subject", "subject", { required: true, value: current?.subject || "" }),
    h("label", {}, "Message", h("textarea", { name: "body", required: true, rows: 3 }, current?.body || ""),
      h("div", { class: "field-error", "data-error-for": "body" })),
    field("Last day (YYYY-MM-DD, empty: until removed)", "until", { value: current?.until || "" }),
    h("div", { class: "row" }, h("button", { type: "submit" }, current ? "Update autoreply" : "Start autoreply"),
      current ? h("button", { class: "plain", type: "button", onclick: act(() => api("delete_autoreply", { address: m.address }), "Autoreply stopped.",
        `Stop the autoreply of ${m.address}?`) }, "Stop") : null));
  submit(form, (r) => ({ bad_params: "body" })[r], async (f) => {
    const p = { address: m.address, subject: f.subject, body: f.body };
    if (f.until) p.until = f.until;
    await api("set_autoreply", p);
    await render(undefined, `${m.address} answers automatically now.`);
  });
  return form;
}

// A mailbox's app passwords (names only: a password is shown once, when made), each revocable,
// and the form that makes one.
async function appPasswords(m) {
  const box = h("div", {});
  const draw = async () => box.replaceChildren(await listed("get_list_app_password", { address: m.address, limit: 5 }, "app_passwords",
    (a) => h("tr", { "data-app-password-name": a.name }, h("td", {}, a.name), h("td", {}, a.created_at),
      h("td", {}, h("button", { class: "danger", type: "button",
        onclick: act(() => api("delete_app_password", { address: m.address, name: a.name }), `${a.name} revoked.`,
          `Revoke the app password ${a.name}? The device using it can no longer sign in.`) }, "Revoke"))),
    ["App password", "Made", ""]));
  await draw();
  return h("div", {}, box, appPasswordForm(m, draw));
}

function appPasswordForm(m, redraw) {
  const shown = h("div", {});
  const form = h("form", { class: "row", "data-app-password": m.address },
    field("App password for (a device or program)", "name", { required: true, placeholder: "phone" }),
    h("button", { type: "submit" }, "Make an app password"));
  submit(form, (r) => ({ bad_params: "name", already_exists: "name", quota_exceeded: "name" })[r], async (f) => {
    const p = await api("add_app_password", { address: m.address, name: f.name });
    form.reset();
    shown.replaceChildren(h("p", {}, `${p.name}: shown only now`), h("div", { class: "secret" }, p.password), copyButton(p.password));
    await redraw();
  });
  return h("div", {}, form, shown);
}

// BCC or transports of one domain: the list and a form to add one.
async function routesTable(d, kind, label, example) {
  const table = await listed(`get_list_${kind}`, { domain: d.domain, limit: 50 }, "routes",
    (r) => h("tr", { [`data-${kind}`]: r.source }, h("td", {}, r.source), h("td", {}, r.region), h("td", {}, r.destination),
      h("td", {}, h("button", { class: "danger", type: "button",
        onclick: act(() => api(`delete_${kind}`, { source: r.source, region: r.region }), "Removed.",
          `Remove the ${kind} of ${r.source}?`) }, "Remove"))),
    [label, "Region", "To", ""]);
  const form = h("form", { class: "row", [`data-add-${kind}`]: d.domain },
    field("Source", "source", { required: true, placeholder: kind === "bcc" ? `@${d.domain}` : d.domain }),
    field("Destination", "destination", { required: true, placeholder: example }),
    h("button", { type: "submit" }, kind === "bcc" ? "Add BCC" : "Add transport"));
  submit(form, (r) => (["bad_email", "bad_params", "forbidden", "already_exists"].includes(r) ? "destination" : null), async (f) => {
    await api(`add_${kind}`, { source: f.source, destination: f.destination });
    await render(undefined, "Added.");
  });
  return h("div", {}, table, form);
}

// The domain's keys: each with its record to publish; a published key can be activated.
function dkimBlock(d, dkim) {
  const keys = dkim ? dkim.keys : [];
  const make = h("button", { type: "button", class: "plain", "data-make-dkim": d.domain, onclick: async () => {
    try {
      // A new selector each time (a DNS label: "hp" and the time in base 36), so a rotation
      // publishes the next key beside the current one.
      const selector = `hp${Date.now().toString(36)}`;
      say("Making a key…");
      const made = await api("set_dkim", { domain: d.domain, selector });
      // A domain's first key signs at once; a later one waits until its record is published.
      await render(undefined, made.state === "active"
        ? `DKIM key ${selector} made and signing: publish its record below.`
        : `DKIM key ${selector} made: publish its record, then activate it.`);
    } catch (e) {
      say(explain(e), "error");
    }
  } }, keys.length ? "New DKIM key" : "Make a DKIM key");
  if (!keys.length) return h("div", {}, h("p", { class: "muted" }, "No key yet."), make);
  return h("div", {}, ...keys.map((k) => h("div", { class: "dkim", "data-dkim": k.selector },
    h("p", {}, h("code", {}, k.name), " ", badge(k.state),
      k.state === "published" ? h("button", { class: "plain", type: "button", "data-activate-dkim": k.selector,
        onclick: act(() => api("activate_dkim", { domain: d.domain, selector: k.selector }), `${k.selector} signs from now on.`) }, "Activate") : null),
    h("div", { class: "secret" }, k.record), copyButton(k.record))), make);
}

async function mailDnsTable(d) {
  let r;
  try {
    r = await api("get_mail_dns", { domain: d.domain });
  } catch (e) {
    return h("p", { class: "muted" }, explain(e));
  }
  return table(["Name", "Type", "Value"], r.records.map((x) =>
    h("tr", {}, h("td", {}, h("code", {}, x.name)), h("td", {}, x.type),
      h("td", {}, h("code", {}, x.prio ? `${x.prio} ${x.content}` : x.content)))));
}

function quotaBar(m) {
  const used = m.used_bytes || 0;
  if (!m.quota_bytes) return `${(used / 1048576).toFixed(1)} MB`;
  const pct = Math.min(100, Math.round((used * 100) / m.quota_bytes));
  const fill = h("span", {});
  fill.style.width = `${pct}%`; // set through the CSSOM: the CSP allows no style attributes
  return h("div", {}, h("div", { class: "bar", role: "progressbar", "aria-valuenow": pct, "aria-valuemin": 0, "aria-valuemax": 100 },
    fill), h("span", { class: "muted" }, `${pct}% of ${(m.quota_bytes / 1048576).toFixed(0)} MB`));
}
