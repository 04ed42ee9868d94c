// Passkey ceremonies for the hub's pages (WebAuthn Level 3 §5.1.3 create, §5.1.4 get).
// The pages' Content-Security-Policy allows no inline script, only this file. A button
// says what to do in data attributes:
//   data-passkey="get"     sign in, or the second factor: data-options, data-finish
//   data-passkey="create"  register: data-options, data-finish, data-name (input id)
//   data-csrf              the page's CSRF token, sent in every JSON body
//   data-request           the sign-in request handle, when there is one
//   data-status            the id of the live region that reports what happened
// Buttons are hidden until this script runs, so a browser without it never sees them.
(function () {
  "use strict";

  function b64uToBuf(s) {
    s = s.replace(/-/g, "+").replace(/_/g, "/");
    while (s.length % 4) s += "=";
    var bin = atob(s);
    var out = new Uint8Array(bin.length);
    for (var i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
    return out.buffer;
  }

  function bufToB64u(buf) {
    var bytes = new Uint8Array(buf);
    var s = "";
    for (var i = 0; i < bytes.length; i++) s += String.fromCharCode(bytes[i]);
    return btoa(s).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  async function post(url, body) {
    var r = await fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body),
    });
    var j = {};
    try { j = await r.json(); } catch (e) { /* not JSON: say the status */ }
    if (!r.ok) throw new Error(j.error || "The server answered " + r.status + "; try again.");
    return j;
  }

  function say(btn, text) {
    var out = document.getElementById(btn.dataset.status || "");
    if (out) out.textContent = text;
  }

  function extensions(cred) {
    return cred.getClientExtensionResults ? cred.getClientExtensionResults() : {};
  }

  async function getAssertion(btn) {
    var opts = await post(btn.dataset.options, { csrf: btn.dataset.csrf });
    var pk = opts.publicKey;
    pk.challenge = b64uToBuf(pk.challenge);
    (pk.allowCredentials || []).forEach(function (c) { c.id = b64uToBuf(c.id); });
    // A button press: the modal dialog, not conditional mediation (autofill).
    var cred = await navigator.credentials.get({ publicKey: pk });
    var body = {
      csrf: btn.dataset.csrf,
      credential: {
        id: cred.id,
        rawId: bufToB64u(cred.rawId),
        type: cred.type,
        response: {
          authenticatorData: bufToB64u(cred.response.authenticatorData),
          clientDataJSON: bufToB64u(cred.response.clientDataJSON),
          signature: bufToB64u(cred.response.signature),
          userHandle: cred.response.userHandle ? bufToB64u(cred.response.userHandle) : null,
        },
        extensions: extensions(cred),
      },
    };
    if (btn.dataset.request) body.request = btn.dataset.request;
    var done = await post(btn.dataset.finish, body);
    window.location.assign(done.redirect);
  }

  async function create(btn) {
    var input = document.getElementById(btn.dataset.name || "");
    var name = input ? input.value.trim() : "Passkey";
    if (input && !name) {
      input.focus();
      throw new Error("Give the passkey a name first, e.g. \"Work laptop\".");
    }
    var opts = await post(btn.dataset.options, { csrf: btn.dataset.csrf });
    var pk = opts.publicKey;
    pk.challenge = b64uToBuf(pk.challenge);
    pk.user.id = b64uToBuf(pk.user.id);
    (pk.excludeCredentials || []).forEach(function (c) { c.id = b64uToBuf(c.id); });
    var cred = await navigator.credentials.create({ publicKey: pk });
    var done = await post(btn.dataset.finish, {
      csrf: btn.dataset.csrf,
      name: name,
      credential: {
        id: cred.id,
        rawId: bufToB64u(cred.rawId),
        type: cred.type,
        response: {
          attestationObject: bufToB64u(cred.response.attestationObject),
          clientDataJSON: bufToB64u(cred.response.clientDataJSON),
        },
        extensions: extensions(cred),
      },
    });
    window.location.assign(done.redirect);
  }

  document.querySelectorAll("[data-passkey]").forEach(function (btn) {
    if (!window.PublicKeyCredential || !navigator.credentials) {
      say(btn, "This browser cannot use passkeys; use another way below.");
      return;
    }
    btn.hidden = false;
    btn.addEventListener("click", async function (ev) {
      ev.preventDefault();
      btn.disabled = true;
      say(btn, "Follow your browser's prompt…");
      try {
        if (btn.dataset.passkey === "create") await create(btn); else await getAssertion(btn);
      } catch (e) {
        var cancelled = e && (e.name === "NotAllowedError" || e.name === "AbortError");
        say(btn, cancelled ? "The passkey was not used (cancelled or timed out). Try again." : e.message);
        btn.disabled = false;
      }
    });
  });
})();
