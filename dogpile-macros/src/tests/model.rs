//! Property tests of the parse / validate / expand layer: random token streams,
//! random option lists and random fn signatures go through [`attribute`], the
//! `proc_macro2` entry point the real macro calls.
//!
//! For every input: no panic (proptest reports a panic as a failure, with a shrunk
//! input); an accepted attribute expands to code that parses as a Rust file, with the
//! wrapper, `{fn}_no_cache`, `{fn}_prime` and the `static`; a rejected one expands to
//! `compile_error!` beside the fn, unchanged. Option lists on known-good fns are also
//! checked against a model of which lists are valid.
//!
//! Cases per property: [`CASES`] (override with `DOGPILE_FUZZ_CASES`, e.g. 100000 for a
//! long run). Each run draws new inputs; a failure prints its shrunk input, which then
//! belongs in a unit test in `tests/mod.rs`.

use crate::attr::AttrArgs;
use crate::expand::attribute;
use crate::options::OPTIONS;
use crate::validate::validate;
use proc_macro2::{Delimiter, Group, Ident, Literal, Punct, Spacing, Span, TokenStream, TokenTree};
use proptest::prelude::*;
use proptest::test_runner::Config;
use std::str::FromStr;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

/// Cases per property: about half a second each in a debug build.
const CASES: u32 = 512;

fn config() -> Config {
    let cases = std::env::var("DOGPILE_FUZZ_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(CASES);
    Config {
        cases,
        // A failure prints its shrunk input; don't write regression files into `src/`.
        failure_persistence: None,
        ..Config::default()
    }
}

/// How many inputs each property ran, and how many of them the attribute accepted
/// (printed once the configured number of cases has run, for the record).
static RUNS: [AtomicUsize; 5] = [const { AtomicUsize::new(0) }; 5];
static ACCEPTED: [AtomicUsize; 5] = [const { AtomicUsize::new(0) }; 5];

fn count(property: usize, name: &str, accepted: bool) {
    if accepted {
        ACCEPTED[property].fetch_add(1, Relaxed);
    }
    let n = RUNS[property].fetch_add(1, Relaxed) + 1;
    if n == config().cases as usize {
        let accepted = ACCEPTED[property].load(Relaxed);
        println!("fuzz: {name}: {n} cases, {accepted} accepted and expanded");
    }
}

// ----------------------------------------------------------------------------- checks

/// Runs the whole attribute and checks its output. `model`: whether the input must be
/// accepted (`Some(true)`), rejected (`Some(false)`), or either.
/// Returns whether the attribute was accepted.
fn check(
    args: &TokenStream,
    item: &TokenStream,
    model: Option<bool>,
) -> Result<bool, TestCaseError> {
    // The layers one by one: never a panic, only `Ok` or a `syn::Error`.
    let parsed_args = syn::parse2::<AttrArgs>(args.clone());
    let parsed_item = syn::parse2::<syn::ItemFn>(item.clone());
    let accepted = match parsed_item {
        Ok(item_fn) => validate(parsed_args, item_fn, Span::call_site()).is_ok(),
        Err(_) => false,
    };
    if let Some(expected) = model {
        prop_assert_eq!(
            accepted,
            expected,
            "#[dogpile({})] {}: accepted = {}, the model says {}",
            args,
            item,
            accepted,
            expected
        );
    }

    let out = attribute(args.clone(), item.clone());
    let text = out.to_string();
    if accepted {
        let file = syn::parse2::<syn::File>(out.clone()).map_err(|e| {
            TestCaseError::fail(format!(
                "#[dogpile({args})] {item}\nexpands to code that doesn't parse: {e}\n{text}"
            ))
        })?;
        prop_assert!(!text.contains("compile_error"), "{}", text);
        let item_fn = syn::parse2::<syn::ItemFn>(item.clone()).unwrap();
        let name = item_fn.sig.ident.to_string();
        let name = name.trim_start_matches("r#");
        let fns: Vec<String> = file
            .items
            .iter()
            .filter_map(|i| match i {
                syn::Item::Fn(f) => Some(f.sig.ident.to_string()),
                _ => None,
            })
            .map(|n| n.trim_start_matches("r#").to_owned())
            .collect();
        prop_assert_eq!(
            &fns[..3],
            [
                name.to_owned(),
                format!("{name}_no_cache"),
                format!("{name}_prime")
            ]
        );
        let statics = file
            .items
            .iter()
            .filter(|i| matches!(i, syn::Item::Static(_)))
            .count();
        // A free fn's cache is a `static`, declared twice: for the compiler and, under
        // `cfg(doc)`, with readable types for rustdoc. A method's is in an associated fn
        // (declared twice the same way) or in a field, and so is an associated fn's.
        let method = match validate(
            syn::parse2::<AttrArgs>(args.clone()),
            item_fn,
            Span::call_site(),
        ) {
            Ok((options, func)) => crate::naming::in_impl(&options, &func),
            Err(_) => unreachable!("accepted above"),
        };
        prop_assert_eq!(statics, if method { 0 } else { 2 });
        prop_assert!(fns.len() == 3 || (method && fns.len() == 5), "{fns:?}");
    } else {
        prop_assert!(
            text.contains("compile_error"),
            "rejected without an error: {}",
            text
        );
        // The input comes back unchanged beside the error: if it was a fn, it still is.
        if let Ok(original) = syn::parse2::<syn::ItemFn>(item.clone()) {
            let file = syn::parse2::<syn::File>(out).map_err(|e| {
                TestCaseError::fail(format!("rejected output doesn't parse: {e}\n{text}"))
            })?;
            let last = file.items.last().expect("the fn");
            prop_assert_eq!(
                quote::quote!(#last).to_string(),
                quote::quote!(#original).to_string()
            );
        }
    }
    Ok(accepted)
}

/// The option names followed by `others`.
fn pool(others: &[&'static str]) -> Vec<&'static str> {
    OPTIONS.iter().chain(others).copied().collect()
}

fn lex(s: &str) -> Option<TokenStream> {
    TokenStream::from_str(s).ok()
}

// ------------------------------------------------------------------ arbitrary tokens

/// Identifiers besides the option names (`validate::OPTIONS`) that random tokens use.
const OTHER_IDENTS: &[&str] = &[
    "fn", "self", "Self", "super", "async", "const", "unsafe", "extern", "pub", "impl", "dyn",
    "mut", "ref", "static", "where", "x", "T", "Result", "Arc", "u32", "str", "_", "_x", "東京",
    "CLOCK", "clone", "ttl_secs", "r#type", "r#ttl",
];

const PUNCTS: &[char] = &[
    '=', ',', ':', ';', '&', '<', '>', '-', '#', '!', '.', '|', '+', '*', '/', '@', '?', '$', '~',
    '^', '%', '\'',
];

fn arb_ident() -> impl Strategy<Value = TokenTree> {
    prop::sample::select(pool(OTHER_IDENTS)).prop_map(|name| match name.strip_prefix("r#") {
        Some(raw) => Ident::new_raw(raw, Span::call_site()).into(),
        None => Ident::new(name, Span::call_site()).into(),
    })
}

fn arb_literal() -> impl Strategy<Value = TokenTree> {
    prop_oneof![
        "[0-9a-z µ]{0,8}".prop_map(|s| Literal::string(&s)),
        any::<String>().prop_map(|s| Literal::string(&s)),
        prop::sample::select(
            &[
                "1s",
                "250ms",
                "1h 30m",
                "0s",
                "",
                "3600x",
                "99999999999999999999y"
            ][..]
        )
        .prop_map(Literal::string),
        any::<u64>().prop_map(Literal::u64_unsuffixed),
        any::<u8>().prop_map(Literal::u8_suffixed),
        any::<i64>().prop_map(Literal::i64_unsuffixed),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Literal::f64_unsuffixed),
        any::<char>().prop_map(Literal::character),
        prop::collection::vec(any::<u8>(), 0..6).prop_map(|b| Literal::byte_string(&b)),
        prop::sample::select(&["5ms", "10_000", "0x1f", "1e3", "7usize", "b'a'", "r\"raw\""][..])
            .prop_map(|s| Literal::from_str(s).unwrap()),
    ]
    .prop_map(TokenTree::from)
}

fn arb_tree() -> impl Strategy<Value = TokenTree> {
    let leaf = prop_oneof![
        3 => arb_ident(),
        3 => (prop::sample::select(PUNCTS), any::<bool>()).prop_map(|(c, joint)| {
            // A `'` is only ever joint (it starts a lifetime).
            let spacing = if joint || c == '\'' { Spacing::Joint } else { Spacing::Alone };
            TokenTree::from(Punct::new(c, spacing))
        }),
        2 => arb_literal(),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        (
            prop::sample::select(
                &[
                    Delimiter::Parenthesis,
                    Delimiter::Brace,
                    Delimiter::Bracket,
                    Delimiter::None,
                ][..],
            ),
            prop::collection::vec(inner, 0..6),
        )
            .prop_map(|(delimiter, trees)| {
                TokenTree::from(Group::new(delimiter, trees.into_iter().collect()))
            })
    })
}

fn arb_stream() -> impl Strategy<Value = TokenStream> {
    prop::collection::vec(arb_tree(), 0..12).prop_map(|trees| trees.into_iter().collect())
}

/// Text from Rust-ish characters, lexed (inputs that don't lex are skipped).
fn arb_lexed() -> impl Strategy<Value = TokenStream> {
    "[a-z_A-Z0-9=,:;&<>()\\[\\]{}\"' .#!|+*/-]{0,48}".prop_filter_map("doesn't lex", |s| lex(&s))
}

// ------------------------------------------------------------------ option lists

/// A valid fn and what the model needs to know about it.
struct KnownFn {
    src: &'static str,
    returns_result: bool,
    /// Returns `Option<T>`, so `skip_none` fits.
    returns_option: bool,
    is_async: bool,
    /// The named arguments (what `key = ..` may name), and whether each is a `&T`.
    args: &'static [(&'static str, bool)],
}

const KNOWN_FNS: &[KnownFn] = &[
    KnownFn {
        src: "fn f(x: u32) -> u32 { x }",
        returns_option: false,
        returns_result: false,
        is_async: false,
        args: &[("x", false)],
    },
    KnownFn {
        src: "/// Docs.\n#[inline] pub fn render(page: &str, lang: Lang) -> Arc<Html> { todo!() }",
        returns_option: false,
        returns_result: false,
        is_async: false,
        args: &[("page", true), ("lang", false)],
    },
    KnownFn {
        src: "fn parse(text: &str) -> Result<u32, E> { text.parse() }",
        returns_option: false,
        returns_result: true,
        is_async: false,
        args: &[("text", true)],
    },
    KnownFn {
        src: "async fn fetch(url: &str, _: u8, mut n: u32) -> io::Result<Vec<u8>> { todo!() }",
        returns_option: false,
        returns_result: true,
        is_async: true,
        args: &[("url", true), ("n", false)],
    },
    KnownFn {
        src: "pub(crate) async fn get(id: u64) -> String { todo!() }",
        returns_option: false,
        returns_result: false,
        is_async: true,
        args: &[("id", false)],
    },
    KnownFn {
        src: "fn find(db: &Db, id: u64) -> Option<Row> { todo!() }",
        returns_option: true,
        returns_result: false,
        is_async: false,
        args: &[("db", true), ("id", false)],
    },
    KnownFn {
        src: "fn ping() {}",
        returns_option: false,
        returns_result: false,
        is_async: false,
        args: &[],
    },
    KnownFn {
        src: "fn r#type<'a>(m: &'a [u8], k: (u8, String)) -> () {}",
        returns_option: false,
        returns_result: false,
        is_async: false,
        args: &[("m", true), ("k", false)],
    },
];

/// The kinds of option value, each with what it is valid for.
#[derive(Clone, Debug)]
enum Value {
    /// No `= value`: valid for flags only.
    Flag,
    /// A string literal: valid for `ttl` and the other durations if humantime parses it
    /// (to non-zero, except for `none_ttl` and `stale_while_revalidate`).
    Str(String),
    /// An integer literal as written, and whether it is a valid `capacity`.
    Int(&'static str, bool),
    /// A plain identifier: `name`, `crate`, `clock`.
    Ident(&'static str),
    /// A path: `crate`, `clock`.
    Path(&'static str),
    /// Any other expression: `clock` only.
    Expr(&'static str),
    /// Not an expression at all: valid for nothing.
    Garbage(&'static str),
    /// `key =` and nothing: a parse error.
    Empty,
}

impl Value {
    fn text(&self) -> String {
        match self {
            Value::Flag => String::new(),
            Value::Str(s) => format!(" = {s:?}"),
            Value::Int(s, _)
            | Value::Ident(s)
            | Value::Path(s)
            | Value::Expr(s)
            | Value::Garbage(s) => {
                format!(" = {s}")
            }
            Value::Empty => " =".to_owned(),
        }
    }

    /// Whether `key = self` is a valid option (for a known key) on `f`.
    fn valid_for(&self, key: &str, f: &KnownFn) -> bool {
        let is_arg = |name: &str| f.args.iter().any(|(a, _)| *a == name);
        match (key, self) {
            ("key", Value::Ident(name)) => is_arg(name),
            ("key", Value::Expr(e)) if e.starts_with('(') => {
                let names: Vec<&str> = e
                    .trim_matches(|c| c == '(' || c == ')')
                    .split(',')
                    .map(str::trim)
                    .collect();
                let unique = names
                    .iter()
                    .enumerate()
                    .all(|(i, n)| !names[..i].contains(n));
                unique && names.iter().all(|n| is_arg(n))
            }
            ("skip_none", Value::Flag) => f.returns_option,
            ("ttl" | "stale_if_error" | "refresh_ahead" | "wait_at_most", Value::Str(s)) => {
                humantime::parse_duration(s.trim()).is_ok_and(|d| !d.is_zero())
            }
            // Each value's own lifetime: a closure or a fn's path (rustc checks its type).
            ("ttl", Value::Ident(_) | Value::Path(_)) => true,
            ("ttl", Value::Expr(e)) => e.starts_with('|'),
            ("none_ttl", Value::Str(s)) => {
                f.returns_option && humantime::parse_duration(s.trim()).is_ok()
            }
            ("stale_while_revalidate", Value::Str(s)) => {
                humantime::parse_duration(s.trim()).is_ok()
            }
            ("retry_backoff", Value::Str(s)) => s.split_once("..").is_some_and(|(base, cap)| {
                let parse = |d: &str| {
                    humantime::parse_duration(d.trim())
                        .ok()
                        .filter(|d| !d.is_zero())
                };
                matches!((parse(base), parse(cap)), (Some(b), Some(c)) if b <= c)
            }),
            ("sync_readers" | "background", Value::Flag) => true,
            ("capacity", Value::Int(_, valid)) => *valid,
            ("name", Value::Ident(_)) => true,
            ("crate", Value::Ident(_) | Value::Path(_)) => true,
            ("clock", Value::Int(..) | Value::Ident(_) | Value::Path(_) | Value::Expr(_)) => true,
            // Any expression (rustc checks that it is a tier); a string is refused.
            ("shared", Value::Int(..) | Value::Ident(_) | Value::Path(_) | Value::Expr(_)) => true,
            // The known fns have no `self`, so the flag fits each of them.
            ("associated", Value::Flag) => true,
            _ => false,
        }
    }
}

fn arb_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        3 => Just(Value::Flag),
        3 => prop_oneof![
            prop::sample::select(&["1s", "250ms", "1h 30m", " 5m ", "2 days", "1ns", "0s", "0", "", "3600x", "1 fortnight", "manual", "99999999999999999999999y"][..])
                .prop_map(str::to_owned),
            "[0-9 ]{0,3}(ns|ms|s|m|h|d|x|)",
        ]
        .prop_map(Value::Str),
        2 => prop::sample::select(&[
            ("1", true), ("10_000", true), ("7usize", true), ("0x10", true), ("0", false),
            ("5u8", false), ("-1", false), ("99999999999999999999999", false), ("1e3", false),
        ][..])
        .prop_map(|(s, ok)| Value::Int(s, ok)),
        2 => prop::sample::select(&["MY_CACHE", "Pages", "X1", "r#fn", "x", "page", "id", "url"][..]).prop_map(Value::Ident),
        1 => prop::sample::select(&["::x", "my::dp", "::dogpile", "crate::dp"][..]).prop_map(Value::Path),
        2 => prop::sample::select(&[
            "CLOCK.clone()", "make::<A, B>()", "|a, b| a", "Foo { a: 1 }", "(1, 2)", "[x; 3]",
            "if a { b } else { c }", "ManualClock::new()", "&CLOCK", "Duration::from_secs(5)",
            "(page, lang)", "(id, db)", "(x, x)", "(lang)", "(n, url)",
        ][..])
        .prop_map(Value::Expr),
        1 => prop::sample::select(&["a b", "1 2", "= x", ";", "\"1s\" \"2s\"", "fn"][..]).prop_map(Value::Garbage),
        1 => Just(Value::Empty),
    ]
}

/// Option keys besides `validate::OPTIONS` (each of which is drawn too): repeats to
/// weight the common ones, raw identifiers, and misspellings.
const OTHER_KEYS: &[&str] = &[
    "ttl", "ttl", "clock", "r#ttl", "r#clock", "ttl_secs", "colour", "capacty", "size", "timeout",
    "Ttl", "clocks",
];

#[derive(Clone, Debug)]
struct OptionList {
    options: Vec<(&'static str, Value)>,
    leading_comma: bool,
    trailing_comma: bool,
}

impl OptionList {
    fn text(&self) -> String {
        let body = self
            .options
            .iter()
            .map(|(key, value)| format!("{key}{}", value.text()))
            .collect::<Vec<_>>()
            .join(", ");
        format!(
            "{}{body}{}",
            if self.leading_comma { ", " } else { "" },
            if self.trailing_comma && !self.options.is_empty() {
                ","
            } else {
                ""
            }
        )
    }

    /// Whether the attribute must accept this list on `f`.
    fn valid_on(&self, f: &KnownFn) -> bool {
        if self.leading_comma {
            return false;
        }
        let mut seen: Vec<&str> = Vec::new();
        for (key, value) in &self.options {
            let key = key.trim_start_matches("r#");
            if seen.contains(&key) || !value.valid_for(key, f) {
                return false;
            }
            seen.push(key);
        }
        let has = |k: &str| seen.contains(&k);
        let conflict = has("sync_readers") && has("background");
        let needs_result = (has("stale_if_error") || has("retry_backoff")) && !f.returns_result;
        let none_twice = has("none_ttl") && has("skip_none");
        let ttl_is_expr = self
            .options
            .iter()
            .any(|(k, v)| k.trim_start_matches("r#") == "ttl" && !matches!(v, Value::Str(_)));
        let none_unsaid = ttl_is_expr && f.returns_option && !has("skip_none") && !has("none_ttl");
        let guard_across_await = has("sync_readers") && f.is_async;
        // With `background` the body may outlive the call: it can't borrow a non-key arg.
        let key_names = self
            .options
            .iter()
            .find(|(k, _)| k.trim_start_matches("r#") == "key")
            .map(|(_, v)| v.text());
        let borrows_outside_key = has("background")
            && key_names.is_some_and(|names| {
                f.args.iter().any(|(arg, is_ref)| {
                    *is_ref
                        && !names
                            .trim_start_matches(" = ")
                            .trim_matches(|c| c == '(' || c == ')')
                            .split(',')
                            .any(|n| n.trim() == *arg)
                })
            });
        has("ttl")
            && !conflict
            && !needs_result
            && !none_twice
            && !none_unsaid
            && !guard_across_await
            && !borrows_outside_key
    }
}

fn arb_options() -> impl Strategy<Value = OptionList> {
    (
        prop::collection::vec((prop::sample::select(pool(OTHER_KEYS)), arb_value()), 0..7),
        prop::bool::weighted(0.05),
        any::<bool>(),
    )
        .prop_map(|(options, leading_comma, trailing_comma)| OptionList {
            options,
            leading_comma,
            trailing_comma,
        })
}

/// Valid option lists: a valid ttl among a few options with values that fit them, so
/// that many cases are accepted and expand. With `modes`, also the flags that depend on
/// the fn or conflict with each other (`sync_readers`, `background`, `stale_if_error`,
/// `retry_backoff`).
fn arb_good_options(modes: bool) -> impl Strategy<Value = OptionList> {
    let mut options = vec![
        ("capacity", Value::Int("10_000", true)),
        ("stale_while_revalidate", Value::Str("1h".into())),
        ("refresh_ahead", Value::Str("10s".into())),
        ("wait_at_most", Value::Str("2s".into())),
        ("name", Value::Ident("MY_CACHE")),
        ("crate", Value::Path("::dogpile")),
        ("clock", Value::Expr("make::<A, B>(|a, b| a)")),
    ];
    if modes {
        options.extend([
            ("sync_readers", Value::Flag),
            ("background", Value::Flag),
            ("stale_if_error", Value::Str("1h".into())),
            ("retry_backoff", Value::Str("100ms..30s".into())),
        ]);
    }
    let len = options.len();
    let flags = prop::sample::subsequence(options, 0..=len).prop_shuffle();
    (flags, any::<prop::sample::Index>(), any::<bool>()).prop_map(
        |(mut options, at, trailing_comma)| {
            let at = at.index(options.len() + 1);
            options.insert(at, ("ttl", Value::Str("10m".into())));
            OptionList {
                options,
                leading_comma: false,
                trailing_comma,
            }
        },
    )
}

/// A valid list with one change that may break it: an option repeated, a value
/// replaced, an unknown key added, the ttl removed, a stray comma. Most such lists are
/// one step from being accepted, so the model is checked right at its edges.
fn arb_mutated_options() -> impl Strategy<Value = OptionList> {
    (
        arb_good_options(true),
        0..6u8,
        any::<prop::sample::Index>(),
        any::<prop::sample::Index>(),
        prop::sample::select(pool(OTHER_KEYS)),
        arb_value(),
    )
        .prop_map(|(mut list, mutation, at, to, key, value)| {
            let n = list.options.len(); // at least 1: the ttl
            match mutation {
                0 => {
                    let repeated = list.options[at.index(n)].clone();
                    list.options.insert(to.index(n + 1), repeated);
                }
                1 => list.options[at.index(n)].1 = value,
                2 => list.options.insert(to.index(n + 1), (key, value)),
                3 => list.options.retain(|(k, _)| *k != "ttl"),
                4 => list.leading_comma = true,
                _ => list.options[at.index(n)].0 = key,
            }
            list
        })
}

// ------------------------------------------------------------------ fn signatures

/// Mostly one of `valid` (9 in 10), else one of `invalid`.
fn mostly(
    valid: &'static [&'static str],
    invalid: &'static [&'static str],
) -> BoxedStrategy<&'static str> {
    prop_oneof![9 => prop::sample::select(valid), 1 => prop::sample::select(invalid)].boxed()
}

/// A fn whose every part is, most of the time, one the attribute accepts, so that a good
/// share of signatures is accepted and expanded while every rejection is also reached.
fn arb_signature() -> impl Strategy<Value = String> {
    let attrs = prop::sample::subsequence(
        vec![
            "/// Docs.",
            "#[inline]",
            "#[must_use]",
            "#[cfg(all())]",
            "#[no_mangle]",
            "#[allow(unused)]",
        ],
        0..3,
    );
    let vis = prop::sample::select(&["", "pub ", "pub(crate) ", "pub(super) "][..]);
    let quals = mostly(
        &["", "", "async "],
        &["const ", "unsafe ", "extern \"C\" ", "async unsafe "],
    );
    let name = mostly(
        &[
            "f",
            "render",
            "r#type",
            "fetchPage",
            "_x",
            "東京",
            "no_cache",
        ],
        &["F", "Self", "r#fn"],
    );
    let generics = mostly(
        &["", "<'a>"],
        &["<T>", "<const N: usize>", "<'a, T: Clone>"],
    );
    let pat = mostly(
        &["x", "mut x", "_", "_z", "r#in"],
        &["(a, b)", "ref r", "S { a }", "x @ 1..=2"],
    );
    let ty = mostly(
        &[
            "u32",
            "&str",
            "String",
            "&[u8]",
            "&'static str",
            "&'a str",
            "(u8, String)",
            "[u8; 4]",
            "Option<String>",
            "fn(&str) -> u8",
            "<T as Tr>::A",
            "m!()",
            "&&u8",
            "()",
            "Box<dyn Fn(&u8)>",
        ],
        &[
            "&mut Vec<u8>",
            "impl AsRef<str>",
            "Option<&str>",
            "T",
            "Self",
            "Cow<'a, str>",
            "!",
        ],
    );
    let arg = (pat, ty).prop_map(|(p, t)| (p, t));
    let args = prop::collection::vec(arg, 0..5);
    let receiver = mostly(&[""], &["&self, ", "self: Arc<Self>, ", "&mut self, "]);
    let output = mostly(
        &[
            "",
            "-> u32",
            "-> ()",
            "-> Result<u32, String>",
            "-> io::Result<Vec<u8>>",
            "-> Arc<String>",
            "-> Result<(), E>",
            "-> Result",
            "-> (Result<u8, E>)",
            "-> &'static str",
            "-> m!()",
        ],
        &["-> impl Clone", "-> &str", "-> !", "-> Self", "-> T"],
    );
    let where_ = mostly(&[""], &[" where T: Copy", " where for<'b> &'b u8: Copy"]);
    (
        attrs, vis, quals, name, generics, receiver, args, output, where_,
    )
        .prop_map(
            |(attrs, vis, quals, name, generics, receiver, args, output, where_)| {
                // Distinct names (`x0`, `x1`, ..), as rustc requires.
                let args: Vec<String> = args
                    .iter()
                    .enumerate()
                    .map(|(i, (pat, ty))| match *pat {
                        "x" | "mut x" | "_z" | "r#in" => format!("{pat}{i}: {ty}"),
                        _ => format!("{pat}: {ty}"),
                    })
                    .collect();
                format!(
                "{} {vis}{quals}fn {name}{generics}({receiver}{}) {output}{where_} {{ todo!() }}",
                attrs.join("\n"),
                args.join(", ")
            )
            },
        )
}

// ------------------------------------------------------------------ properties

proptest! {
    #![proptest_config(config())]

    /// (a) Any token stream as the attribute's arguments, or as one option's value
    /// (`clock = <tokens>` is accepted whenever they form an expression), on a valid fn.
    #[test]
    fn arbitrary_attribute_tokens(
        tokens in prop_oneof![arb_stream(), arb_lexed()],
        shape in 0..6u8,
        f in 0..KNOWN_FNS.len(),
    ) {
        let args = match shape {
            0 | 1 => tokens,
            2 => quote::quote!(ttl = "1s", clock = #tokens),
            3 => quote::quote!(clock = #tokens, ttl = "1s", capacity = 3),
            4 => quote::quote!(ttl = #tokens),
            _ => quote::quote!(ttl = "1s", crate = #tokens, name = #tokens),
        };
        let accepted = check(&args, &lex(KNOWN_FNS[f].src).unwrap(), None)?;
        count(0, "arbitrary_attribute_tokens", accepted);
    }

    /// (a) Any token stream as the item, alone or inside a fn's signature and body.
    #[test]
    fn arbitrary_item_tokens(
        item in arb_stream(),
        inputs in arb_stream(),
        output in arb_stream(),
        shape in 0..3u8,
    ) {
        let item = match shape {
            0 => item,
            1 => quote::quote!(fn f(#inputs) -> #output { #item }),
            _ => quote::quote!(pub async fn f(x: u32, #inputs) { #item }),
        };
        let accepted = check(&quote::quote!(ttl = "1s"), &item, None)?;
        count(1, "arbitrary_item_tokens", accepted);
    }

    /// (b) Random option lists (subsets, orders, repeats, invalid keys and values) on
    /// known-good fns: accepted exactly when the model says so.
    #[test]
    fn option_lists_follow_the_model(
        options in prop_oneof![arb_options(), arb_good_options(true), arb_mutated_options()],
        f in 0..KNOWN_FNS.len(),
    ) {
        let Some(args) = lex(&options.text()) else {
            return Err(TestCaseError::fail(format!("option list doesn't lex: {}", options.text())));
        };
        let known = &KNOWN_FNS[f];
        let accepted = check(&args, &lex(known.src).unwrap(), Some(options.valid_on(known)))?;
        count(2, "option_lists_follow_the_model", accepted);
    }

    /// (b) Random option lists on random fn signatures, valid or not.
    #[test]
    fn option_lists_on_arbitrary_signatures(
        options in prop_oneof![arb_options(), arb_good_options(true)],
        sig in arb_signature(),
    ) {
        let args = lex(&options.text()).expect("option list lexes");
        let item = lex(&sig).expect("signature lexes");
        let accepted = check(&args, &item, None)?;
        count(3, "option_lists_on_arbitrary_signatures", accepted);
    }

    /// (b) Options that fit any fn, on random signatures: the signature alone decides,
    /// and when it is accepted the expansion is complete.
    #[test]
    fn good_options_on_arbitrary_signatures(options in arb_good_options(false), sig in arb_signature()) {
        let args = lex(&options.text()).expect("option list lexes");
        let accepted = check(&args, &lex(&sig).expect("signature lexes"), None)?;
        count(4, "good_options_on_arbitrary_signatures", accepted);
    }
}
