// Log in and sign up. Both ask for the cookie transport: the session lives in
// an HttpOnly cookie and the page never sees its token.

import { authPost } from '../api.js';
import { h, field, busy, clearErrors, showApiError } from '../ui.js';
import { afterSignIn } from '../app.js';

function shell(title, intro, form, footer) {
  return h('section', { class: 'auth' },
    h('div', { class: 'page-head' }, h('div', null, h('h1', null, title), h('p', null, intro))),
    h('div', { class: 'card' }, form),
    h('p', { class: 'muted' }, footer));
}

export function login({ go, signedIn }) {
  const fLogin = field({ name: 'login', label: 'Username or email', autocomplete: 'username', attrs: { autocapitalize: 'none', spellcheck: 'false' } });
  const fPassword = field({ name: 'password', label: 'Password', type: 'password', autocomplete: 'current-password' });
  const submit = h('button', { type: 'submit', class: 'btn btn-primary' }, 'Log in');
  const form = h('form', { class: 'form', novalidate: true }, fLogin.wrap, fPassword.wrap, h('div', { class: 'actions' }, submit));
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    clearErrors(form);
    busy(submit, async () => {
      try {
        const res = await authPost('/api/auth/login', { login: fLogin.input.value, password: fPassword.input.value });
        if (res.twoFactor) {
          form.replaceWith(codeStep(res.twoFactor.challenge, { go, signedIn }));
          return;
        }
        signedIn(res.user);
        go(afterSignIn());
      } catch (err) {
        showApiError(form, err);
      }
    }, 'Logging in…');
  });
  return shell('Log in to Jestha', 'Manage your API keys and see what your integrations post.', form,
    ['New here? ', h('a', { href: '#/signup' }, 'Create an account')]);
}

/** The second login step of a two-factor account: a code from the app, or a recovery code. */
function codeStep(challenge, { go, signedIn }) {
  let recovery = false;
  const fCode = field({ name: 'code', label: 'Authentication code', autocomplete: 'one-time-code', hint: 'The 6-digit code your authenticator app shows for Jestha.', attrs: { inputmode: 'numeric', autocapitalize: 'none', spellcheck: 'false' } });
  const submit = h('button', { type: 'submit', class: 'btn btn-primary' }, 'Verify');
  const toggle = h('button', { type: 'button', class: 'btn btn-quiet' }, 'Use a recovery code instead');
  const label = fCode.wrap.querySelector('label');
  const hint = fCode.wrap.querySelector('.hint');
  toggle.addEventListener('click', () => {
    recovery = !recovery;
    label.textContent = recovery ? 'Recovery code' : 'Authentication code';
    hint.textContent = recovery ? 'One of the ten codes you saved when you turned on two-factor. Each works once.' : 'The 6-digit code your authenticator app shows for Jestha.';
    fCode.input.setAttribute('inputmode', recovery ? 'text' : 'numeric');
    fCode.input.setAttribute('autocomplete', recovery ? 'off' : 'one-time-code');
    toggle.textContent = recovery ? 'Use the authenticator app instead' : 'Use a recovery code instead';
    fCode.input.value = '';
    fCode.input.focus();
  });
  const form = h('form', { class: 'form', novalidate: true, 'aria-label': 'Two-factor code' },
    h('h2', null, 'Two-factor authentication'),
    fCode.wrap, h('div', { class: 'actions' }, submit, toggle));
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    clearErrors(form);
    const value = fCode.input.value.trim();
    const body = recovery ? { challenge, recoveryCode: value } : { challenge, code: value };
    busy(submit, async () => {
      try {
        const res = await authPost('/api/auth/login/2fa', body);
        signedIn(res.user);
        go(afterSignIn());
      } catch (err) {
        showApiError(form, err, { recoveryCode: 'code' });
      }
    }, 'Verifying…');
  });
  queueMicrotask(() => fCode.input.focus());
  return form;
}

export function signup({ go, signedIn, flash }) {
  const fUser = field({ name: 'username', label: 'Username', autocomplete: 'username', hint: '3 to 30 characters: letters a-z, digits and _.', attrs: { autocapitalize: 'none', spellcheck: 'false' } });
  const fEmail = field({ name: 'email', label: 'Email', type: 'email', autocomplete: 'email' });
  const fName = field({ name: 'displayName', label: 'Display name (optional)', autocomplete: 'name' });
  const fPassword = field({ name: 'password', label: 'Password', type: 'password', autocomplete: 'new-password', hint: 'At least 10 characters.' });
  const submit = h('button', { type: 'submit', class: 'btn btn-primary' }, 'Create account');
  const form = h('form', { class: 'form', novalidate: true },
    fUser.wrap, fEmail.wrap, fName.wrap, fPassword.wrap, h('div', { class: 'actions' }, submit));
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    clearErrors(form);
    const body = { username: fUser.input.value.trim(), email: fEmail.input.value.trim(), password: fPassword.input.value };
    if (fName.input.value.trim()) body.displayName = fName.input.value.trim();
    busy(submit, async () => {
      try {
        const res = await authPost('/api/auth/signup', body);
        signedIn(res.user);
        flash(`Welcome to Jestha, @${res.user.username}.`);
        go(afterSignIn());
      } catch (err) {
        showApiError(form, err);
      }
    }, 'Creating account…');
  });
  return shell('Create your account', 'One account, as many API keys as your integrations need.', form,
    ['Already have an account? ', h('a', { href: '#/login' }, 'Log in')]);
}
