//! The command line: global options and the commands.

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

use crate::failure::EXIT_CODES_HELP;
use crate::oauth::DEFAULT_SCOPES;
use crate::retry::DEFAULT_RETRIES;

const AFTER_HELP: &str = "\
Credentials: JESTHA_API_KEY (an API key, for CI and scripts) wins over the stored login
of `jestha login`. Logins live in $XDG_CONFIG_HOME/jestha/ (else ~/.config/jestha/).";

#[derive(Debug, Parser)]
#[command(name = "jestha", version, about = "The Jestha Edge command-line client", after_help = AFTER_HELP, after_long_help = format!("{AFTER_HELP}\n\n{EXIT_CODES_HELP}"))]
pub struct Cli {
    /// The API's base URL [default: the API of the last `jestha login`, else http://127.0.0.1:8787]
    #[arg(long, global = true, env = "JESTHA_API_URL", value_name = "URL")]
    pub api: Option<String>,

    /// Machine output: the API's JSON on stdout, errors as JSON on stderr
    #[arg(long, global = true)]
    pub json: bool,

    /// Retries after a 429 rate_limited, waiting Retry-After with backoff (1 s doubling, at most 60 s); 0 fails at once
    #[arg(long, global = true, value_name = "N", default_value_t = DEFAULT_RETRIES)]
    pub max_retries: u32,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
#[value(rename_all = "UPPER")]
pub enum Visibility {
    Public,
    Followers,
    Private,
}

impl Visibility {
    pub fn as_str(self) -> &'static str {
        match self {
            Visibility::Public => "PUBLIC",
            Visibility::Followers => "FOLLOWERS",
            Visibility::Private => "PRIVATE",
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Sign in: approve this terminal in the browser (OAuth device grant); the tokens are stored and renewed
    Login {
        /// Print the address and code only; don't open a browser
        #[arg(long)]
        no_browser: bool,
        /// The scopes to ask for, space separated (the consent page lets you untick any)
        #[arg(long, default_value = DEFAULT_SCOPES)]
        scope: String,
    },
    /// Revoke this terminal's tokens at the server and forget them
    Logout,
    /// The account the credential acts for
    Whoami,
    /// The credential and its rate-limit and daily-quota standing
    Status,
    /// Post a Jes, with up to 4 images
    Post {
        /// The text; `-` reads it from stdin
        text: String,
        #[arg(long, value_enum, ignore_case = true, default_value = "PUBLIC")]
        visibility: Visibility,
        /// Images to attach (each uploaded first): `--media a.png b.jpg` or `--media a.png --media b.jpg`
        #[arg(long, value_name = "FILE", num_args = 1..)]
        media: Vec<PathBuf>,
        /// Makes a rerun of this command safe: the API creates the Jes once per key (24 h)
        #[arg(long, value_name = "KEY")]
        idempotency_key: Option<String>,
    },
    /// Post a JesClip (a short video), uploaded resumably: a failure on the way resumes where the server has it
    Clip {
        /// The video (MP4, QuickTime or WebM)
        file: PathBuf,
        #[arg(long)]
        caption: String,
        #[arg(long, value_enum, ignore_case = true, default_value = "PUBLIC")]
        visibility: Visibility,
        /// Makes a rerun of this command safe: its upload resumes or is found complete, and the API creates the JesClip once per key (24 h)
        #[arg(long, value_name = "KEY")]
        idempotency_key: Option<String>,
    },
    /// Read the comments of a Jes or JesClip, oldest first
    Comments {
        /// The Jes's or JesClip's id
        id: String,
        /// The id is a JesClip's (found without this too, one request later)
        #[arg(long)]
        clip: bool,
        /// Comments per page (at most 100)
        #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..=100))]
        limit: u32,
        /// Continue from a previous page's nextCursor
        #[arg(long, conflicts_with = "all")]
        cursor: Option<String>,
        /// Every page, not only the first
        #[arg(long)]
        all: bool,
    },
    /// Comment on a Jes or JesClip
    Comment {
        id: String,
        /// The text; `-` reads it from stdin
        text: String,
        /// Reply to this comment
        #[arg(long, value_name = "COMMENT_ID")]
        reply_to: Option<String>,
        /// The id is a JesClip's (found without this too, one request later)
        #[arg(long)]
        clip: bool,
        #[arg(long, value_name = "KEY")]
        idempotency_key: Option<String>,
    },
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("jestha").chain(args.iter().copied()))
    }

    #[test]
    fn the_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn global_options_go_before_or_after_the_command() {
        let a = parse(&["--json", "--api", "https://api.example", "whoami"]).unwrap();
        let b = parse(&["whoami", "--api", "https://api.example", "--json"]).unwrap();
        for c in [a, b] {
            assert!(c.json);
            assert_eq!(c.api.as_deref(), Some("https://api.example"));
            assert!(matches!(c.command, Command::Whoami));
            assert_eq!(c.max_retries, DEFAULT_RETRIES);
        }
    }

    #[test]
    fn post_takes_text_visibility_in_any_case_and_several_media() {
        let c = parse(&["post", "hello #rust", "--visibility", "followers", "--media", "a.png", "b.jpg"]).unwrap();
        let Command::Post { text, visibility, media, idempotency_key } = c.command else { panic!() };
        assert_eq!(text, "hello #rust");
        assert_eq!(visibility, Visibility::Followers);
        assert_eq!(media, [PathBuf::from("a.png"), PathBuf::from("b.jpg")]);
        assert_eq!(idempotency_key, None);
        let c = parse(&["post", "x", "--media", "a.png", "--media", "b.png", "--visibility", "PRIVATE"]).unwrap();
        let Command::Post { visibility, media, .. } = c.command else { panic!() };
        assert_eq!((visibility.as_str(), media.len()), ("PRIVATE", 2));
        let Command::Post { visibility, .. } = parse(&["post", "x"]).unwrap().command else { panic!() };
        assert_eq!(visibility, Visibility::Public);
    }

    #[test]
    fn a_bad_visibility_or_a_missing_argument_is_a_usage_error() {
        for bad in
            [&["post", "x", "--visibility", "secret"][..], &["post"], &["clip", "v.mp4"], &["comment", "id"], &["frobnicate"]]
        {
            let e = parse(bad).unwrap_err();
            assert_eq!(e.exit_code(), 2, "{bad:?}");
        }
    }

    #[test]
    fn clip_needs_a_caption() {
        let c = parse(&["clip", "v.mp4", "--caption", "my clip"]).unwrap();
        let Command::Clip { file, caption, visibility, .. } = c.command else { panic!() };
        assert_eq!((file, caption.as_str(), visibility), (PathBuf::from("v.mp4"), "my clip", Visibility::Public));
    }

    #[test]
    fn comments_limit_is_bounded_and_cursor_excludes_all() {
        let Command::Comments { limit, all, cursor, clip, .. } = parse(&["comments", "P1"]).unwrap().command else { panic!() };
        assert_eq!((limit, all, cursor, clip), (20, false, None, false));
        assert!(parse(&["comments", "P1", "--limit", "0"]).is_err());
        assert!(parse(&["comments", "P1", "--limit", "101"]).is_err());
        assert!(parse(&["comments", "P1", "--all", "--cursor", "c"]).is_err());
    }

    #[test]
    fn comment_takes_a_reply_target() {
        let c = parse(&["comment", "P1", "nice", "--reply-to", "C9", "--clip"]).unwrap();
        let Command::Comment { id, text, reply_to, clip, .. } = c.command else { panic!() };
        assert_eq!((id.as_str(), text.as_str(), reply_to.as_deref(), clip), ("P1", "nice", Some("C9"), true));
    }

    #[test]
    fn login_asks_for_what_the_commands_need_unless_told() {
        let Command::Login { no_browser, scope } = parse(&["login"]).unwrap().command else { panic!() };
        assert!(!no_browser);
        assert_eq!(scope, "write:jes write:jesclip write:comment read:comment");
        let Command::Login { no_browser, scope } = parse(&["login", "--no-browser", "--scope", "read:comment"]).unwrap().command
        else {
            panic!()
        };
        assert!(no_browser);
        assert_eq!(scope, "read:comment");
    }

    #[test]
    fn the_long_help_documents_the_exit_codes_and_the_key_variable() {
        let help = Cli::command().render_long_help().to_string();
        assert!(help.contains("Exit codes"), "{help}");
        assert!(help.contains("JESTHA_API_KEY") && help.contains("JESTHA_API_URL"), "{help}");
    }
}
