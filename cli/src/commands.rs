//! Each command: what it asks the API, and what it prints (the API's JSON
//! with `--json`, a human line or table otherwise).

use std::io::Read;

use serde_json::{json, Value};

use crate::api_url;
use crate::args::{Cli, Command};
use crate::client::{now, Client, Credential};
use crate::failure::Failure;
use crate::http::Http;
use crate::oauth::{self, Endpoints};
use crate::render;
use crate::store::Store;
use crate::ui::Ui;
use crate::upload;

/// Everything a command needs from the environment, read once in `main`.
pub struct Env {
    pub api_key: Option<String>,
    pub client_id: Option<String>,
}

impl Env {
    pub fn from_process() -> Env {
        Env {
            api_key: std::env::var("JESTHA_API_KEY").ok(),
            client_id: std::env::var("JESTHA_CLIENT_ID").ok().filter(|s| !s.is_empty()),
        }
    }
}

pub fn run(cli: Cli, ui: Ui, env: Env) -> Result<(), Failure> {
    let store = Store::from_env()?;
    // A damaged store must not stop a key from working: the login commands report it.
    let last_login = store.load().ok().and_then(|c| c.default_api);
    let api = api_url::resolve(cli.api.as_deref(), last_login.as_deref())?;
    let http = Http::new(ui, cli.max_retries);
    match cli.command {
        Command::Login { no_browser, scope } => login(http, store, &api, env.client_id.as_deref(), &scope, no_browser),
        Command::Logout => logout(&http, &store, &api),
        command => {
            let mut client = Client::connect(http, api, env.api_key.as_deref(), store)?;
            api_command(&mut client, command)
        }
    }
}

fn api_command(client: &mut Client, command: Command) -> Result<(), Failure> {
    let ui = client.http.ui;
    match command {
        Command::Whoami => {
            let me = client.get("/api/auth/me")?;
            if ui.json {
                ui.print_json(&me);
            } else {
                println!("{}", render::user(&me));
                println!("with {}", client.credential.describe(&client.api));
            }
        }
        Command::Status => status(client)?,
        Command::Post { text, visibility, media, idempotency_key } => {
            let text = text_arg(text)?;
            upload::check_files(&media)?;
            let key = idempotency_key.unwrap_or_else(new_idempotency_key);
            let made = upload::publish_post(client, &text, visibility.as_str(), &media, &key)?;
            show(ui, &made, || render::created("Jes", &made));
        }
        Command::Clip { file, caption, visibility, idempotency_key } => {
            upload::check_files([&file])?;
            let key = idempotency_key.unwrap_or_else(new_idempotency_key);
            let made = upload::publish_clip(client, &file, &caption, visibility.as_str(), &key)?;
            show(ui, &made, || render::created("JesClip", &made));
        }
        Command::Comments { id, clip, limit, cursor, all } => comments(client, &id, clip, limit, cursor, all)?,
        Command::Comment { id, text, reply_to, clip, idempotency_key } => {
            let text = text_arg(text)?;
            let mut body = json!({ "content": text });
            if let Some(p) = reply_to {
                body["parentId"] = json!(p);
            }
            let key = idempotency_key.unwrap_or_else(new_idempotency_key);
            // One key per route: the API keeps even the 404 of the Jes route
            // under its key, and the JesClip route is a different request.
            let made = on_jes_or_clip(&id, clip, |path| {
                let kind = if path.starts_with("/api/jesclips") { "jesclip" } else { "jes" };
                client.post(&format!("{path}/comments"), &body, Some(&format!("{key}:{kind}")))
            })?;
            show(ui, &made, || {
                format!("Commented {} on {}", made["id"].as_str().unwrap_or(""), made["postId"].as_str().unwrap_or(&id))
            });
        }
        Command::Login { .. } | Command::Logout => {
            unreachable!("handled without an API credential")
        }
    }
    Ok(())
}

fn show(ui: Ui, value: &Value, human: impl FnOnce() -> String) {
    if ui.json {
        ui.print_json(value);
    } else {
        println!("{}", human());
    }
}

/// A fresh `Idempotency-Key`: one per command, kept across its 429 retries.
fn new_idempotency_key() -> String {
    format!("jestha-{}", crate::random_hex(16))
}

/// TEXT, or stdin for `-`.
fn text_arg(text: String) -> Result<String, Failure> {
    if text != "-" {
        return Ok(text);
    }
    let mut s = String::new();
    std::io::stdin().read_to_string(&mut s).map_err(|e| Failure::new("usage", format!("reading the text from stdin: {e}")))?;
    Ok(s.trim_end_matches(['\n', '\r']).to_string())
}

/// A path segment, percent-encoded (ids are opaque).
fn segment(id: &str) -> String {
    id.bytes()
        .map(|b| if b.is_ascii_alphanumeric() || b"-._~".contains(&b) { (b as char).to_string() } else { format!("%{b:02X}") })
        .collect()
}

/// Runs `call` on `/api/posts/{id}`, and on `/api/jesclips/{id}` when no Jes
/// has that id (or at once with `--clip`): ids alone don't say which it is.
fn on_jes_or_clip(id: &str, clip: bool, mut call: impl FnMut(&str) -> Result<Value, Failure>) -> Result<Value, Failure> {
    let clip_path = format!("/api/jesclips/{}", segment(id));
    if clip {
        return call(&clip_path);
    }
    match call(&format!("/api/posts/{}", segment(id))) {
        Err(f) if f.code == "not_found" => call(&clip_path).map_err(|g| if g.code == "not_found" { f } else { g }),
        other => other,
    }
}

fn comments(client: &mut Client, id: &str, clip: bool, limit: u32, cursor: Option<String>, all: bool) -> Result<(), Failure> {
    let ui = client.http.ui;
    let mut base: Option<String> = None;
    let mut cursor = cursor;
    let mut collected = vec![];
    loop {
        let query = |c: &Option<String>| match c {
            Some(c) => format!("/comments?limit={limit}&cursor={}", segment(c)),
            None => format!("/comments?limit={limit}"),
        };
        let page = match &base {
            Some(b) => client.get(&format!("{b}{}", query(&cursor)))?,
            None => {
                let mut found = String::new();
                let page = on_jes_or_clip(id, clip, |path| {
                    found = path.to_string();
                    client.get(&format!("{path}{}", query(&cursor)))
                })?;
                base = Some(found);
                page
            }
        };
        let items = page.get("items").and_then(Value::as_array).cloned().unwrap_or_default();
        let next = page.get("nextCursor").and_then(Value::as_str).map(str::to_string);
        if !all {
            if ui.json {
                ui.print_json(&page);
            } else {
                if !items.is_empty() {
                    println!("{}", render::comments(&items));
                } else {
                    ui.note("no comments");
                }
                if let Some(n) = &next {
                    ui.note(&format!("more: jestha comments {id} --cursor {n}"));
                }
            }
            return Ok(());
        }
        if !ui.json && !items.is_empty() {
            println!("{}", render::comments(&items));
        }
        collected.extend(items);
        match next {
            Some(n) => cursor = Some(n),
            None => break,
        }
    }
    if ui.json {
        ui.print_json(&json!({ "items": collected, "nextCursor": null }));
    } else if collected.is_empty() {
        ui.note("no comments");
    }
    Ok(())
}

/// The key's own metadata and standing; a login's standing from the rate-limit headers.
fn status(client: &mut Client) -> Result<(), Failure> {
    let ui = client.http.ui;
    if let Credential::ApiKey(_) = client.credential {
        let key = client.get("/api/auth/key")?;
        show(ui, &key, || render::key_status(&key, now()));
        return Ok(());
    }
    let answer = client.get_answer("/api/auth/me")?;
    let me = answer.json()?;
    let standings =
        answer.ratelimit.as_deref().map(|r| render::header_standings(r, answer.ratelimit_policy.as_deref())).unwrap_or_default();
    let Credential::Login(login) = &client.credential else { unreachable!() };
    if ui.json {
        let limits: serde_json::Map<String, Value> = standings
            .iter()
            .map(|s| (s.name.clone(), json!({ "limit": s.limit, "remaining": s.remaining, "resetIn": s.reset_in })))
            .collect();
        ui.print_json(
            &json!({ "api": client.api, "user": me, "scope": login.scope, "expiresAt": login.expires_at, "limits": limits }),
        );
    } else {
        println!("{:<10} {} as {}", "login", client.api, render::user(&me));
        println!("{:<10} {}", "scopes", login.scope.as_deref().unwrap_or("(as granted)"));
        println!(
            "{:<10} expires in {} (renewed automatically)",
            "token",
            render::duration(login.expires_at as i64 - now() as i64)
        );
        for s in &standings {
            println!("{}", render::standing_line(s));
        }
    }
    Ok(())
}

fn login(http: Http, store: Store, api: &str, env_client_id: Option<&str>, scope: &str, no_browser: bool) -> Result<(), Failure> {
    let ui = http.ui;
    let endpoints = oauth::discover(&http, api)?;
    let stored_client = store.load()?.clients.get(api).cloned();
    let mut client_id = match env_client_id.map(str::to_string).or(stored_client.clone()) {
        Some(id) => id,
        None => oauth::register(&http, &endpoints)?,
    };
    let start = match oauth::start(&http, &endpoints, &client_id, scope) {
        // A client this API no longer knows (its database was reset): register afresh.
        Err(f) if f.code == "invalid_client" && env_client_id.is_none() && stored_client.is_some() => {
            client_id = oauth::register(&http, &endpoints)?;
            oauth::start(&http, &endpoints, &client_id, scope)?
        }
        other => other?,
    };
    ui.note(&format!("To sign in, open {} and enter the code: {}", start.verification_uri, start.user_code));
    let open_url = start.verification_uri_complete.as_deref().unwrap_or(&start.verification_uri);
    if !no_browser {
        let is_web = open_url.starts_with("https://") || open_url.starts_with("http://");
        if is_web && open::that_detached(open_url).is_ok() {
            ui.note(&format!("Opened {open_url} in your browser."));
        } else {
            ui.note("Could not open a browser: open the address above yourself.");
        }
    } else if start.verification_uri_complete.is_some() {
        ui.note(&format!("(or open {open_url}, which has the code filled in)"));
    }
    ui.note(&format!("Waiting for approval (the code expires in {})…", render::duration(start.expires_in as i64)));
    let tokens =
        oauth::await_approval(&start, || oauth::poll(&http, &endpoints, &client_id, &start.device_code), std::thread::sleep)?;
    let login = tokens.into_login(None, &client_id, (&endpoints.token, &endpoints.revocation), now());
    let scope_granted = login.scope.clone();
    let expires_at = login.expires_at;
    store.update(|c| {
        c.logins.insert(api.to_string(), login);
        c.clients.insert(api.to_string(), client_id.clone());
        c.default_api = Some(api.to_string());
        Ok(())
    })?;
    let mut client = Client::connect(http, api.to_string(), None, store)?;
    let me = client.get("/api/auth/me").ok();
    if ui.json {
        ui.print_json(&json!({ "api": api, "user": me, "scope": scope_granted, "expiresAt": expires_at }));
    } else {
        let who = me.as_ref().map_or(String::new(), |m| format!(" as {}", render::user(m)));
        println!("Logged in to {api}{who}");
        if let Some(s) = scope_granted {
            println!("scopes: {s}");
        }
    }
    Ok(())
}

fn logout(http: &Http, store: &Store, api: &str) -> Result<(), Failure> {
    let ui = http.ui;
    let Some(login) = store.load()?.logins.get(api).cloned() else {
        if ui.json {
            ui.print_json(&json!({ "api": api, "loggedOut": false }));
        } else {
            println!("Not logged in to {api}: nothing to do");
        }
        return Ok(());
    };
    let endpoint = login.revocation_endpoint.clone().unwrap_or_else(|| Endpoints::at(api).revocation);
    // The refresh token first: revoking it ends the grant, access tokens included.
    let mut revoked = Ok(());
    if let Some(rt) = &login.refresh_token {
        revoked = oauth::revoke(http, &endpoint, &login.client_id, rt, "refresh_token");
    }
    if revoked.is_ok() {
        revoked = oauth::revoke(http, &endpoint, &login.client_id, &login.access_token, "access_token");
    }
    store.update(|c| {
        c.logins.remove(api);
        Ok(())
    })?;
    if let Err(f) = revoked {
        ui.warn("the tokens were forgotten here, but the server did not confirm their revocation: revoke the grant in the web app's settings");
        return Err(f);
    }
    if ui.json {
        ui.print_json(&json!({ "api": api, "loggedOut": true }));
    } else {
        println!("Logged out of {api}: tokens revoked and forgotten");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_one_path_segment_whatever_they_hold() {
        assert_eq!(segment("01JABCDEF"), "01JABCDEF");
        assert_eq!(segment("../admin?x=1"), "..%2Fadmin%3Fx%3D1");
    }

    #[test]
    fn a_jes_id_is_tried_first_and_a_clip_found_when_no_jes_has_it() {
        let nf = || Failure { code: "not_found".into(), message: "no".into(), status: Some(404) };
        let mut tried = vec![];
        let v = on_jes_or_clip("K1", false, |p| {
            tried.push(p.to_string());
            if p.starts_with("/api/posts") {
                Err(nf())
            } else {
                Ok(json!({"ok": p}))
            }
        })
        .unwrap();
        assert_eq!(v["ok"], "/api/jesclips/K1");
        assert_eq!(tried, ["/api/posts/K1", "/api/jesclips/K1"]);

        let mut tried = vec![];
        on_jes_or_clip("K1", true, |p| {
            tried.push(p.to_string());
            Ok(json!({}))
        })
        .unwrap();
        assert_eq!(tried, ["/api/jesclips/K1"], "--clip goes straight there");

        let f = on_jes_or_clip("X", false, |_| Err(nf())).unwrap_err();
        assert_eq!(f.code, "not_found");
        let denied = on_jes_or_clip("P1", false, |_| {
            Err(Failure { code: "insufficient_scope".into(), message: "m".into(), status: Some(403) })
        });
        assert_eq!(denied.unwrap_err().code, "insufficient_scope", "only a 404 sends it to the JesClip route");
    }

    #[test]
    fn text_other_than_a_dash_is_taken_as_it_is() {
        assert_eq!(text_arg("hello -".into()).unwrap(), "hello -");
    }
}
