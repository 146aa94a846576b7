// Sign-in, invitation acceptance and the signed-in user's account.
import { useState } from 'preact/hooks'
import { acceptInvitation, gql, signIn, signOut } from '../api.js'
import { navigate } from '../router.js'
import { ErrorBox, Field, announce, html, useAction, useTitle } from '../ui.js'

export function SignIn() {
  useTitle('Sign in')
  const [email, setEmail] = useState('')
  const [password, setPassword] = useState('')
  const a = useAction()
  const submit = (e) => {
    e.preventDefault()
    a.run(() => signIn(email, password))
  }
  return html`<main id="main" class="narrow">
    <h1 id="page-title" tabindex="-1">Sign in to Crumbs</h1>
    <form onSubmit=${submit} class="card">
      <${Field} label="Email" id="email"><input id="email" type="email" autocomplete="username" required value=${email} onInput=${(e) => setEmail(e.target.value)} /><//>
      <${Field} label="Password" id="password"><input id="password" type="password" autocomplete="current-password" required value=${password} onInput=${(e) => setPassword(e.target.value)} /><//>
      <${ErrorBox} error=${a.error && a.error.code === 'UNAUTHENTICATED' ? { code: 'Wrong email or password', message: 'Check both and try again.' } : a.error} />
      <button type="submit" disabled=${a.busy}>Sign in</button>
    </form>
    <p class="muted">No account yet? The first one is made on the server with <code>go run ./server admin create --email you@example.com</code>; everyone else joins by invitation.</p>
  </main>`
}

/** /invitation#<token>: the token stays in the fragment, so it never reaches a server log. */
export function Invitation() {
  useTitle('Accept invitation')
  const token = decodeURIComponent(location.hash.slice(1))
  const [name, setName] = useState('')
  const [password, setPassword] = useState('')
  const a = useAction()
  const submit = (e) => {
    e.preventDefault()
    a.run(async () => {
      await acceptInvitation(token, name, password)
      history.replaceState(null, '', '/invitation')
      navigate('/', true)
    })
  }
  return html`<main id="main" class="narrow">
    <h1 id="page-title" tabindex="-1">Join a Crumbs app</h1>
    ${!token ? html`<p class="error" role="alert">This link has no invitation token. Ask the app's owner for a new invitation.</p>` : html`
    <form onSubmit=${submit} class="card">
      <p>Choose a password for your new account, or enter the password of your existing account with the invited email.</p>
      <${Field} label="Your name (new accounts)" id="inv-name"><input id="inv-name" autocomplete="name" value=${name} onInput=${(e) => setName(e.target.value)} /><//>
      <${Field} label="Password" id="inv-password" hint="At least 10 characters." error=${a.fieldError('password')}>
        <input id="inv-password" type="password" autocomplete="new-password" required value=${password} onInput=${(e) => setPassword(e.target.value)} /><//>
      <${ErrorBox} error=${a.otherError('password')} />
      <button type="submit" disabled=${a.busy}>Accept invitation</button>
    </form>`}
  </main>`
}

export function Account({ user }) {
  useTitle('Account')
  const [cur, setCur] = useState('')
  const [next, setNext] = useState('')
  const [done, setDone] = useState(false)
  const a = useAction()
  const change = (e) => {
    e.preventDefault()
    setDone(false)
    a.run(async () => {
      await gql('mutation($c: String!, $n: String!) { changePassword(currentPassword: $c, newPassword: $n) }', { c: cur, n: next })
      setCur('')
      setNext('')
      setDone(true)
      announce('Password changed.')
    })
  }
  const everywhere = useAction()
  const fieldErr = (f) => a.fieldError(f)
  const [delPw, setDelPw] = useState('')
  const del = useAction()
  const deleteAccount = (e) => {
    e.preventDefault()
    if (!confirm(`Delete the account ${user.email}? This cannot be undone.`)) return
    del.run(async () => {
      await gql('mutation($p: String!) { deleteAccount(password: $p) }', { p: delPw })
      await signOut()
      navigate('/signin')
      announce('Your account was deleted.')
    })
  }
  return html`<main id="main" class="narrow">
    <p><a href="/">← Back to the dashboard</a></p>
    <h1 id="page-title" tabindex="-1">Your account</h1>
    <section class="card"><h2>Profile</h2>
      <dl class="facts"><dt>Name</dt><dd>${user.name}</dd><dt>Email</dt><dd>${user.email}</dd></dl>
    </section>
    <form class="card" onSubmit=${change}>
      <h2>Change password</h2>
      <p class="muted">Your other sign-ins end; this one stays.</p>
      <${Field} label="Current password" id="cur-pw" error=${fieldErr('currentPassword')}><input id="cur-pw" type="password" autocomplete="current-password" required value=${cur} onInput=${(e) => setCur(e.target.value)} /><//>
      <${Field} label="New password" id="new-pw" hint="At least 10 characters, not your email." error=${fieldErr('newPassword')}><input id="new-pw" type="password" autocomplete="new-password" required value=${next} onInput=${(e) => setNext(e.target.value)} /><//>
      <${ErrorBox} error=${a.otherError('currentPassword', 'newPassword')} />
      ${done && html`<p class="ok">Password changed.</p>`}
      <button type="submit" disabled=${a.busy}>Change password</button>
    </form>
    <section class="card"><h2>Sign out everywhere</h2>
      <p>Ends every sign-in of your account, on every device, this one included.</p>
      <${ErrorBox} error=${everywhere.error} />
      <button class="danger" disabled=${everywhere.busy} onClick=${() => everywhere.run(async () => {
        await gql('mutation { logoutEverywhere }')
        await signOut()
        navigate('/signin')
      })}>Sign out everywhere</button>
    </section>
    <form class="card" onSubmit=${deleteAccount}>
      <h2>Delete your account</h2>
      <p>Your account, your memberships of apps and every sign-in go. The apps stay with their other members; an app you alone own needs another owner first (its Members page), or the operator of this Crumbs can hand it to someone as they delete your account.</p>
      <${Field} label="Password" id="del-pw" error=${del.fieldError('password')}><input id="del-pw" type="password" autocomplete="current-password" required value=${delPw} onInput=${(e) => setDelPw(e.target.value)} /><//>
      <${ErrorBox} error=${del.otherError('password')} />
      <button type="submit" class="danger" disabled=${del.busy}>Delete my account</button>
    </form>
  </main>`
}
