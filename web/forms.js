// The console's forms: a field with its error slot, submitting with the reason shown beside the
// field it is about, and live redraws that wait for the focus to leave and keep text typed.
// Built on app.js's helpers (api, h, say, explain); every element from the DOM API.
"use strict";

function field(label, name, attrs = {}) {
  const id = `f-${name}-${Math.random().toString(36).slice(2, 8)}`;
  const input = h("input", { id, name, ...attrs });
  const error = h("div", { class: "field-error", id: `${id}-err`, "data-error-for": name });
  input.setAttribute("aria-describedby", error.id);
  return h("label", { for: id }, label, input, error);
}

// Runs a form's action: disables it meanwhile, shows the reason by the right field or on top.
function submit(form, fieldFor, run) {
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    for (const e of form.querySelectorAll(".field-error")) e.textContent = "";
    for (const i of form.querySelectorAll("[aria-invalid]")) i.removeAttribute("aria-invalid");
    const buttons = form.querySelectorAll("button");
    buttons.forEach((b) => (b.disabled = true));
    say("Working…");
    try {
      const data = Object.fromEntries(new FormData(form).entries());
      await run(data);
      // Clear only our own "Working…": a message the action said (a one-time code, "password
      // changed") stays.
      if (document.getElementById("status").textContent === "Working…") say("");
    } catch (e) {
      // An ended session already sent the console to the sign-in page, with its own message.
      if (e instanceof ApiError && e.reason === "auth_required" && !me) return;
      const name = e instanceof ApiError ? fieldFor(e.reason) : null;
      const slot = name && form.querySelector(`[data-error-for="${name}"]`);
      if (slot) {
        slot.textContent = explain(e);
        form.querySelector(`[name="${name}"]`)?.setAttribute("aria-invalid", "true");
        say("");
      } else {
        say(explain(e), "error");
      }
    } finally {
      buttons.forEach((b) => (b.disabled = false));
    }
  });
  return form;
}

// An action's button: runs `run` (after `question`, if given, is answered yes), then redraws the
// page with `done` as its message; a failure is said on top.
function act(run, done, question) {
  return async () => {
    if (question && !confirm(question)) return;
    try {
      await run();
      await render(undefined, done);
    } catch (e) {
      say(explain(e), "error");
    }
  };
}

// What was typed into the forms under `root` and not sent (passwords aside), to put back after a
// live redraw: [form, field name, text]. A form is known by its id or its first data-* attribute.
function typedIn(root) {
  const typed = [];
  for (const f of root.querySelectorAll("form")) {
    const key = formKey(f);
    for (const i of key ? f.querySelectorAll("input, textarea") : []) {
      if (i.name && i.type !== "password" && i.type !== "checkbox" && i.value !== i.defaultValue) typed.push([key, i.name, i.value]);
    }
  }
  return typed;
}

function restoreTyped(root, typed) {
  for (const [key, name, value] of typed) {
    const form = [...root.querySelectorAll("form")].find((f) => formKey(f) === key);
    const input = form && [...form.elements].find((i) => i.name === name);
    if (input) input.value = value;
  }
}

function formKey(form) {
  if (form.id) return `#${form.id}`;
  const a = [...form.attributes].find((x) => x.name.startsWith("data-"));
  return a ? `${a.name}=${a.value}` : null;
}

// Runs `run` once no element under `root` has the focus: at once, or when the focus leaves `root`
// (moving within it waits on), so a live redraw never interrupts typing or the error beside a
// field just submitted.
function onceLeft(root, run) {
  if (!root.contains(document.activeElement)) return run();
  const left = (e) => {
    if (e.relatedTarget && root.contains(e.relatedTarget)) root.addEventListener("focusout", left, { once: true });
    else run();
  };
  root.addEventListener("focusout", left, { once: true });
}
