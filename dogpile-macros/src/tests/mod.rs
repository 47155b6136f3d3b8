//! Parse / validate / expand on token streams. The compile-level behaviour (what rustc
//! says, what the generated code does) is covered by this crate's trybuild suite
//! (`tests/ui.rs`), its tests of accepted inputs (`tests/pass/`) and the root package's
//! end-to-end tests.

mod model;

use crate::ast::{ArgKind, Output};
use crate::attr::AttrArgs;
use crate::expand::attribute;
use crate::naming::screaming_snake_case;
use crate::validate::validate;
use proc_macro2::{Span, TokenStream};
use quote::quote;
use std::time::Duration;

/// The error messages for `#[dogpile(args)] item`, or an empty list if it is accepted.
fn errors(args: TokenStream, item: TokenStream) -> Vec<String> {
    let item = syn::parse2(item).expect("test item is a fn");
    match validate(syn::parse2::<AttrArgs>(args), item, Span::call_site()) {
        Ok(_) => Vec::new(),
        Err(e) => e.into_iter().map(|e| e.to_string()).collect(),
    }
}

/// Asserts exactly one error, containing every one of `needles`.
#[track_caller]
fn assert_error(args: TokenStream, item: TokenStream, needles: &[&str]) {
    let errors = errors(args, item);
    assert_eq!(errors.len(), 1, "expected one error, got {errors:#?}");
    for needle in needles {
        assert!(
            errors[0].contains(needle),
            "error {:?} should contain {needle:?}",
            errors[0]
        );
    }
}

fn render() -> TokenStream {
    quote!(
        pub fn render(page: &str, lang: Lang) -> Arc<Html> {
            body()
        }
    )
}

/// The expansion, without whitespace (so `> >` and `>>` compare equal).
fn expanded(args: TokenStream, item: TokenStream) -> String {
    squash(&attribute(args, item).to_string())
}

fn squash(s: &str) -> String {
    s.chars().filter(|c| !c.is_whitespace()).collect()
}

#[track_caller]
fn assert_contains(out: &str, want: &str) {
    assert!(
        out.contains(&squash(want)),
        "{out}\n\nshould contain\n\n{want}"
    );
}

#[test]
fn parses_every_option() {
    let item = syn::parse2(quote!(
        fn f(x: &str) -> Result<u32, E> {
            todo!()
        }
    ))
    .unwrap();
    let args = syn::parse2::<AttrArgs>(quote!(
        ttl = "1h 30m",
        capacity = 10_000,
        stale_if_error = "1h",
        stale_while_revalidate = "250ms",
        retry_backoff = "100ms..30s",
        refresh_ahead = "10s",
        wait_at_most = "2s",
        name = F_CACHE,
        crate = ::my_dogpile,
    ));
    let (options, func) = validate(args, item, Span::call_site()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(options.ttl.unwrap().value, Duration::from_secs(5400));
    assert_eq!(options.capacity, Some(10_000));
    assert_eq!(
        options.stale_if_error.map(|d| d.value),
        Some(Duration::from_secs(3600))
    );
    assert_eq!(
        options.stale_while_revalidate.map(|d| d.value),
        Some(Duration::from_millis(250))
    );
    let (base, cap) = options.retry_backoff.unwrap();
    assert_eq!(
        (base.value, cap.value),
        (Duration::from_millis(100), Duration::from_secs(30))
    );
    assert_eq!(
        options.refresh_ahead.map(|d| d.value),
        Some(Duration::from_secs(10))
    );
    assert_eq!(
        options.wait_at_most.map(|d| d.value),
        Some(Duration::from_secs(2))
    );
    assert_eq!(options.name.unwrap().to_string(), "F_CACHE");
    let krate = &options.krate;
    assert_eq!(quote!(#krate).to_string(), ":: my_dogpile");
    assert!(matches!(func.args[0].kind, ArgKind::Ref(_)));
    assert!(matches!(func.output, Output::Result { .. }));
}

#[test]
fn flags() {
    let item = || render();
    assert!(errors(quote!(ttl = "1s", sync_readers), item()).is_empty());
    assert!(errors(quote!(ttl = "1s", background), item()).is_empty());
    assert!(errors(quote!(r#ttl = "1s"), item()).is_empty());
}

#[test]
fn expansion_shape() {
    let out = expanded(quote!(ttl = "1h"), render());
    let want = [
        "let __cache = :: dogpile :: __private :: handle (& RENDER) ;",
        // For the compiler, a missing bound is reported once, at the user's type.
        "# [cfg (not (doc))] pub static RENDER : :: dogpile :: __private :: LazyLock < :: dogpile :: Cache < (\
         << str as :: dogpile :: __private :: Checked < { \
         < str as :: dogpile :: __private :: KeyRefPart > :: OK & \
         < str as :: dogpile :: __private :: KeyShared > :: OK } >> :: Is \
         as :: std :: borrow :: ToOwned > :: Owned , \
         < Lang as :: dogpile :: __private :: Checked < { \
         < Lang as :: dogpile :: __private :: KeyPart > :: OK & \
         < Lang as :: dogpile :: __private :: KeyShared > :: OK } >> :: Is) , \
         < Arc < Html > as :: dogpile :: __private :: Checked < { \
         < Arc < Html > as :: dogpile :: __private :: ValueClone > :: OK & \
         < Arc < Html > as :: dogpile :: __private :: ValueShared > :: OK } >> :: Is , \
         :: dogpile :: mode :: Inline > >",
        // Owned key parts are cloned for the body through the cache, and so is the key
        // `_prime` stores: a part that failed its check gives no further error there.
        "{ use :: dogpile :: __private :: InlineCalls as _ ; __cache . dogpile_get (& (page , & lang) , || render_no_cache (page , { use :: dogpile :: __private :: Parts as _ ; __cache . dogpile_clone (& lang) })) } }",
        "let __key = { use :: dogpile :: __private :: Parts as _ ; __cache . dogpile_key (& (page , & lang)) } ;",
        "pub fn render_no_cache (page : & str , lang : Lang) -> Arc < Html > { body () }",
        "pub fn render_prime (page : & str , lang : Lang) -> Arc < Html >",
        // Rustdoc shows the type as the user would write it.
        "# [cfg (doc)] pub static RENDER : :: dogpile :: __private :: LazyLock < :: dogpile :: Cache < (:: std :: string :: String , Lang) , Arc < Html > , :: dogpile :: mode :: Inline > >",
        ":: dogpile :: __private :: Duration :: new (3600 , 0)",
    ];
    for want in want {
        assert_contains(&out, want);
    }
    assert!(!out.contains("compile_error"), "{out}");
}

#[test]
fn expansion_options() {
    let out = expanded(
        quote!(
            ttl = "2s",
            capacity = 5,
            stale_if_error = "1h",
            stale_while_revalidate = "1m",
            name = PAGES,
            crate = my::dp
        ),
        quote!(
            fn f(mut x: u32, _: Token) -> io::Result<u32> {
                x += 1;
                Ok(x)
            }
        ),
    );
    for want in [
        "fn f (x : u32 , __arg1 : Token) -> io :: Result < u32 >",
        // `io::Result<u32>` hides its error type: the call infers it.
        "__cache . dogpile_try_get :: < _ , _ > (& & x , || my :: dp :: __note_error ! (f_no_cache ({ use my :: dp :: __private :: Parts as _ ; __cache . dogpile_clone (& x) } , __arg1)))",
        "fn f_no_cache (mut x : u32 , _ : Token) -> io :: Result < u32 > { x += 1 ; Ok (x) }",
        "static PAGES : my :: dp :: __private :: LazyLock < my :: dp :: Cache < u32 , u32 , my :: dp :: mode :: Inline > >",
        "static PAGES : my :: dp :: __private :: LazyLock < my :: dp :: Cache < < u32 as my :: dp :: __private :: Checked < { < u32 as my :: dp :: __private :: KeyPart > :: OK & < u32 as my :: dp :: __private :: KeyShared > :: OK } >> :: Is , < u32 as my :: dp :: __private :: Checked < { < u32 as my :: dp :: __private :: ValueClone > :: OK & < u32 as my :: dp :: __private :: ValueShared > :: OK } >> :: Is , my :: dp :: mode :: Inline > >",
        ". ttl (my :: dp :: __private :: Duration :: new (2 , 0)) . name (:: core :: concat ! (:: core :: module_path ! () , \"::\" , :: core :: stringify ! (f))) . capacity (5) . stale_while_revalidate (my :: dp :: __private :: Duration :: new (60 , 0)) . stale_if_error (my :: dp :: __private :: Duration :: new (3600 , 0)) . build ()",
    ] {
        assert_contains(&out, want);
    }
}

#[test]
fn expansion_sync_readers_background_async() {
    let out = expanded(
        quote!(ttl = "1s", sync_readers),
        quote!(
            fn f(x: &[u8]) -> io::Result<Vec<u8>> {
                todo!()
            }
        ),
    );
    assert_contains(
        &out,
        "fn f (x : & [u8]) -> io :: Result < :: dogpile :: ReadGuard < Vec < u8 > > >",
    );
    assert_contains(
        &out,
        "use :: dogpile :: __private :: ReaderCalls as _ ; __cache . dogpile_try_get :: < _ , _ > (& x ,",
    );
    assert_contains(&out, "static F : :: dogpile :: __private :: LazyLock < :: dogpile :: Cache < :: std :: vec :: Vec < u8 > , Vec < u8 > , :: dogpile :: mode :: SyncReaders > >");
    assert_contains(&out, ". sync_readers ()");

    let out = expanded(quote!(ttl = "1s", background), render());
    assert_contains(&out, "let __owned = { use :: dogpile :: __private :: Parts as _ ; __cache . dogpile_key (__borrowed) } ;");
    // The hit path first, by the borrowed key; the key parts are cloned only on a miss.
    // The helpers are given the checked value type, so that a value that failed its
    // check is not reported again through the creator's type.
    assert_contains(&out, "let __borrowed = & (page , & lang) ; let __entry = __cache . entry_by_ref (__borrowed) ; match :: dogpile :: __private :: background_hit :: < _ , < Arc < Html > as :: dogpile :: __private :: Checked < { < Arc < Html > as :: dogpile :: __private :: ValueClone > :: OK & < Arc < Html > as :: dogpile :: __private :: ValueShared > :: OK } >> :: Is , _ > (& __entry) { :: core :: option :: Option :: Some (__hit) => __hit , :: core :: option :: Option :: None => { let __owned =");
    assert_contains(&out, "__entry . get_with (move || render_no_cache (:: core :: borrow :: Borrow :: borrow (& __owned . 0) , __owned . 1))");
    assert_contains(&out, ". background_refresh ()");

    let out = expanded(
        quote!(ttl = "1s", background),
        quote!(
            async fn f(x: &str) -> Result<String, E> {
                todo!()
            }
        ),
    );
    assert_contains(&out, ":: core :: option :: Option :: Some (__hit) => :: core :: result :: Result :: Ok (__hit) ,");
    // `Result<String, E>` names its error type: the call is given it checked.
    assert_contains(&out, ":: dogpile :: __private :: try_get_background_async :: < _ , < String as :: dogpile :: __private :: Checked < { < String as :: dogpile :: __private :: ValueClone > :: OK & < String as :: dogpile :: __private :: ValueShared > :: OK } >> :: Is , _ , < E as :: dogpile :: __private :: Checked < { < E as :: dogpile :: __private :: ErrorPart > :: OK } >> :: Is , _ > (__entry , async move { :: dogpile :: __note_error ! (f_no_cache (:: core :: borrow :: Borrow :: borrow (& __owned)) . await) }) . await");

    let out = expanded(
        quote!(ttl = "1s"),
        quote!(
            async fn f(x: &str) -> String {
                todo!()
            }
        ),
    );
    assert_contains(&out, ":: dogpile :: __private :: get_async :: < _ , < String as :: dogpile :: __private :: Checked < { < String as :: dogpile :: __private :: ValueClone > :: OK & < String as :: dogpile :: __private :: ValueShared > :: OK } >> :: Is , _ > (__cache . entry_by_ref (& x) , :: core :: pin :: pin ! (async { f_no_cache (x) . await })) . await }");
}

#[test]
fn zero_args_and_unit() {
    let out = expanded(
        quote!(ttl = "1s"),
        quote!(
            fn config() -> u32 {
                1
            }
        ),
    );
    assert_contains(&out, "__cache . dogpile_get (& () , || config_no_cache ())");
    assert_contains(
        &out,
        "Cache < () , < u32 as :: dogpile :: __private :: Checked < { < u32 as :: dogpile :: __private :: ValueClone > :: OK & < u32 as :: dogpile :: __private :: ValueShared > :: OK } >> :: Is , :: dogpile :: mode :: Inline >",
    );
    let out = expanded(
        quote!(ttl = "1s"),
        quote!(
            fn ping(host: String) {}
        ),
    );
    assert_contains(&out, "Cache < String , () , :: dogpile :: mode :: Inline >");
    assert_contains(&out, "__cache . insert (__key , ())");
}

#[test]
fn keeps_attributes() {
    let out = expanded(
        quote!(ttl = "1s"),
        quote!(
            /// Docs.
            #[inline]
            #[cfg(feature = "x")]
            #[no_mangle]
            pub(crate) fn f() -> u32 {
                1
            }
        ),
    );
    // The wrapper keeps everything; the companions get `cfg` and `inline` but not the docs or
    // `no_mangle`; the static (declared twice: for the compiler, and for rustdoc) gets
    // `cfg` only.
    assert_eq!(out.matches("Docs.").count(), 1, "{out}");
    assert_eq!(out.matches("#[no_mangle]").count(), 1, "{out}");
    assert_eq!(out.matches("#[inline]").count(), 3, "{out}");
    assert_eq!(out.matches("#[cfg(feature=\"x\")]").count(), 5, "{out}");
    assert_eq!(out.matches("pub(crate)").count(), 5, "{out}");
}

#[test]
fn screaming() {
    assert_eq!(screaming_snake_case("render_page"), "RENDER_PAGE");
    assert_eq!(screaming_snake_case("renderPage2"), "RENDER_PAGE2");
    assert_eq!(screaming_snake_case("fib"), "FIB");
    let out = expanded(
        quote!(ttl = "1s"),
        quote!(
            fn r#type() -> u32 {
                1
            }
        ),
    );
    assert_contains(&out, "static TYPE :");
    assert_contains(&out, "fn type_no_cache");
}

#[test]
fn clock_option() {
    let item = || {
        quote!(
            fn f(x: u32) -> u32 {
                x
            }
        )
    };
    // Any expression, evaluated in the `static`'s initializer and handed to the builder.
    let out = expanded(quote!(ttl = "1s", clock = CLOCK.clone()), item());
    assert_contains(
        &out,
        ". ttl (:: dogpile :: __private :: Duration :: new (1 , 0)) . name (:: core :: concat ! (:: core :: module_path ! () , \"::\" , :: core :: stringify ! (f))) . clock (CLOCK . clone ()) . build ()",
    );
    // Commas outside any group (turbofish, closure parameters) stay in the expression,
    // and options after it still parse.
    let args = quote!(ttl = "1s", clock = make::<A, B>(|a, b| a + b), capacity = 3);
    let item_fn = syn::parse2(item()).unwrap();
    let (options, _) = validate(
        syn::parse2::<AttrArgs>(args.clone()),
        item_fn,
        Span::call_site(),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let clock = options.clock.expect("clock given");
    assert_eq!(
        squash(&quote!(#clock).to_string()),
        squash("make :: < A , B > (| a , b | a + b)")
    );
    assert_eq!(options.capacity, Some(3));
    assert_contains(
        &expanded(args, item()),
        ". capacity (3) . clock (make :: < A , B > (| a , b | a + b)) . build ()",
    );
    // Without it: no `.clock(..)`, the system clock.
    assert!(!expanded(quote!(ttl = "1s"), item()).contains(".clock("));

    assert_error(
        quote!(ttl = "1s", clock = A, clock = B),
        item(),
        &["`clock` is given more than once"],
    );
    assert_error(
        quote!(ttl = "1s", clock),
        item(),
        &["`clock` needs a value"],
    );
    assert_error(
        quote!(ttl = "1s", clock = "manual"),
        item(),
        &["not a string", "dogpile::Clock"],
    );
    assert_error(
        quote!(ttl = "1s", clock = a b),
        item(),
        &["`clock` takes an expression"],
    );
    assert_error(
        quote!(ttl = "1s", clock =),
        item(),
        &["expected a value after `clock =`"],
    );
    assert_error(
        quote!(ttl = "1s", clocks = C),
        item(),
        &["did you mean `clock`?"],
    );
}

#[test]
fn option_errors() {
    let f = || {
        quote!(
            fn f(x: u32) -> u32 {
                x
            }
        )
    };
    assert_error(quote!(), f(), &["missing `ttl`"]);
    assert_error(quote!(capacity = 3), f(), &["missing `ttl`"]);
    assert_error(
        quote!(ttl = "3600x"),
        f(),
        &["invalid `ttl` \"3600x\"", "unknown time unit \"x\""],
    );
    assert_error(
        quote!(ttl = "0s"),
        f(),
        &["`ttl` must be greater than zero"],
    );
    assert_error(quote!(ttl = "0"), f(), &["`ttl` must be greater than zero"]);
    assert_error(quote!(ttl = ""), f(), &["invalid `ttl`"]);
    assert_error(quote!(ttl = 5), f(), &["write `ttl = \"5s\"`"]);
    assert_error(quote!(ttl = 5ms), f(), &["write `ttl = \"5ms\"`"]);
    assert_error(
        quote!(ttl = Duration::from_secs(5)),
        f(),
        &["duration string literal"],
    );
    assert_error(quote!(ttl), f(), &["`ttl` needs a value"]);
    assert_error(
        quote!(ttl = "1s", ttl = "2s"),
        f(),
        &["`ttl` is given more than once"],
    );
    assert_error(
        quote!(ttl = "1s", colour),
        f(),
        &[
            "unknown option `colour`",
            "`ttl`, `none_ttl`, `sync_readers`, `capacity`",
        ],
    );
    assert_error(
        quote!(ttl = "1s", capacty = 3),
        f(),
        &["did you mean `capacity`?"],
    );
    assert_error(
        quote!(ttl_secs = 60),
        f(),
        &["unknown option `ttl_secs`", "ttl = \"60s\""],
    );
    assert_error(
        quote!(ttl = "1s", background = true),
        f(),
        &["`background` is a flag"],
    );
    assert_error(quote!(ttl = "1s", capacity = 0), f(), &["at least 1"]);
    assert_error(quote!(ttl = "1s", capacity = -1), f(), &["at least 1"]);
    assert_error(
        quote!(ttl = "1s", capacity = "10"),
        f(),
        &["write `capacity = 10`"],
    );
    assert_error(
        quote!(ttl = "1s", capacity = 10u8),
        f(),
        &["`capacity` is a `usize`"],
    );
    assert_error(
        quote!(ttl = "1s", capacity = 99999999999999999999999),
        f(),
        &["invalid `capacity`"],
    );
    assert_error(
        quote!(ttl = "1s", max_stale = "1m"),
        f(),
        &["`max_stale` is replaced by `stale_while_revalidate"],
    );
    assert_error(
        quote!(ttl = "1s", stale_if_error),
        f(),
        &["`stale_if_error` takes a window"],
    );
    assert_error(
        quote!(ttl = "1s", refresh_ahead = "0s"),
        f(),
        &["`refresh_ahead` must be greater than zero"],
    );
    assert_error(
        quote!(ttl = "1s", wait_at_most = "soon"),
        f(),
        &["invalid `wait_at_most`"],
    );
    assert_error(
        quote!(ttl = "1s", retry_backoff = "30s..1s"),
        f(),
        &["`retry_backoff`'s base (30s) is above its cap (1s)"],
    );
    assert_error(
        quote!(ttl = "1s", retry_backoff = "1s"),
        f(),
        &["write base and cap"],
    );
    assert_error(
        quote!(ttl = "1s", retry_backoff = "0s..1s"),
        f(),
        &["base must be greater than zero"],
    );
    assert_error(
        quote!(ttl = "1s", name = "CACHE"),
        f(),
        &["write `name = CACHE`"],
    );
    assert_error(
        quote!(ttl = "1s", name = a::b),
        f(),
        &["`name` takes an identifier"],
    );
    assert_error(
        quote!(ttl = "1s", name = f),
        f(),
        &["clashes with the generated fn `f`"],
    );
    assert_error(quote!(ttl = "1s", name = f_prime), f(), &["clashes"]);
    assert_error(
        quote!(ttl = "1s", crate = "dp"),
        f(),
        &["write `crate = dp`"],
    );
    assert_error(
        quote!(ttl = "1s", crate = 1 + 1),
        f(),
        &["`crate` takes the path"],
    );
    assert_error(quote!(ttl("1s")), f(), &["expected `,` or `=` after `ttl`"]);
    assert_error(quote!(ttl =), f(), &["expected a value after `ttl =`"]);
    assert_error(quote!("1s"), f(), &["expected an option name"]);
    assert_error(
        quote!(ttl = "1s", sync_readers, background),
        f(),
        &["`background` can't be combined with `sync_readers`"],
    );
    assert_error(
        quote!(ttl = "1s", stale_if_error = "1h"),
        f(),
        &["`stale_if_error` needs a fn that returns `Result<T, E>`"],
    );
    assert_error(
        quote!(ttl = "1s", retry_backoff = "1s..2s"),
        f(),
        &["`retry_backoff` needs a fn that returns `Result<T, E>`"],
    );
    assert_error(
        quote!(ttl = "1s", none_ttl = "30s"),
        f(),
        &["`none_ttl` is how long an `Option` fn's `None` is kept, and `f` does not"],
    );
    let option_fn = || {
        quote!(
            fn f(x: u32) -> Option<u32> {
                Some(x)
            }
        )
    };
    assert_error(
        quote!(ttl = |v: &u32| Duration::from_secs(u64::from(*v))),
        option_fn(),
        &["say how long `f`'s `None` is kept with `none_ttl"],
    );
    assert_error(
        quote!(ttl = "1s", none_ttl = "1s", skip_none),
        option_fn(),
        &["`skip_none` is `none_ttl = \"0s\"`"],
    );
}

#[test]
fn a_ttl_expression_and_none_ttl_become_ttl_with() {
    let out = expanded(
        quote!(ttl = |t: &Token| t.valid_for, stale_while_revalidate = "0s"),
        quote!(
            fn token(user: u32) -> Result<Token, Error> {
                todo!()
            }
        ),
    );
    for want in [
        ". ttl (:: dogpile :: __private :: Duration :: from_secs (3600))",
        ":: dogpile :: __private :: value_lifetime :: < Token , _ > (| t : & Token | t . valid_for)",
        // The builder's closure takes the checked value type, as the cache does.
        "move | _ , value : & < Token as :: dogpile :: __private :: Checked < { < Token as :: dogpile :: __private :: ValueClone > :: OK & < Token as :: dogpile :: __private :: ValueShared > :: OK } >> :: Is | of (value)",
        ". stale_while_revalidate (:: dogpile :: __private :: Duration :: new (0 , 0))",
    ] {
        assert_contains(&out, want);
    }
    let out = expanded(
        quote!(ttl = "1h", none_ttl = "30s"),
        quote!(
            fn find(id: u32) -> Option<u32> {
                None
            }
        ),
    );
    for want in [
        "move | _ : & u32 | :: dogpile :: __private :: Duration :: new (3600 , 0)",
        ":: core :: option :: Option :: None => :: dogpile :: __private :: Duration :: new (30 , 0)",
    ] {
        assert_contains(&out, want);
    }
    // `none_ttl = "0s"` is `skip_none`: the fallible path, nothing stored for `None`.
    let out = expanded(
        quote!(ttl = "1h", none_ttl = "0s"),
        quote!(
            fn find(id: u32) -> Option<u32> {
                None
            }
        ),
    );
    assert_contains(&out, "some_or_skip");
    assert!(!out.contains("ttl_with"), "{out}");
}

#[test]
fn signature_errors() {
    let ttl = || quote!(ttl = "1s");
    assert_error(
        ttl(),
        quote!(
            fn f(&self) -> u32 {
                1
            }
        ),
        &[
            "`field = cache` for a per-instance cache",
            "`key = ..` for one cache",
        ],
    );
    assert!(errors(
        quote!(field = cache),
        quote!(
            fn f(&self) -> u32 {
                1
            }
        )
    )
    .is_empty());
    assert!(errors(
        quote!(ttl = "1s", key = x),
        quote!(
            fn f(&self, x: u8) -> u32 {
                1
            }
        )
    )
    .is_empty());
    assert_error(
        quote!(ttl = "1s", key = x),
        quote!(
            fn f(&mut self, x: u8) -> u32 {
                1
            }
        ),
        &["only `&self` methods"],
    );
    assert_error(
        ttl(),
        quote!(
            fn f(self: Arc<Self>) -> u32 {
                1
            }
        ),
        &["only `&self` methods", "instead of `self: Arc<Self>`"],
    );
    assert_error(
        ttl(),
        quote!(
            fn f<T: Hash>(x: T) -> u32 {
                1
            }
        ),
        &["generic fn", "non-generic fn per type"],
    );
    assert_error(
        ttl(),
        quote!(
            fn f<const N: usize>() -> u32 {
                1
            }
        ),
        &["generic fn"],
    );
    assert_error(
        ttl(),
        quote!(
            fn f(x: impl AsRef<str>) -> u32 {
                1
            }
        ),
        &["`impl Trait` arguments"],
    );
    assert_error(
        ttl(),
        quote!(
            fn f(x: u32) -> impl Display {
                1
            }
        ),
        &["can't return `impl Trait`"],
    );
    assert_error(
        ttl(),
        quote!(
            const fn f(x: u32) -> u32 {
                1
            }
        ),
        &["`const fn`"],
    );
    assert_error(
        ttl(),
        quote!(
            unsafe fn f(x: u32) -> u32 {
                1
            }
        ),
        &["`unsafe fn`"],
    );
    assert_error(
        ttl(),
        quote!(
            extern "C" fn f(x: u32) -> u32 {
                1
            }
        ),
        &["`extern` fn"],
    );
    assert_error(
        ttl(),
        quote!(
            fn f(x: &mut Vec<u8>) -> u32 {
                1
            }
        ),
        &["`&mut` arguments"],
    );
    assert_error(
        ttl(),
        quote!(
            fn f((a, b): (u32, u32)) -> u32 {
                1
            }
        ),
        &["only plain names", "destructure it in the body"],
    );
    assert_error(
        ttl(),
        quote!(
            fn f(ref x: u32) -> u32 {
                1
            }
        ),
        &["only plain names"],
    );
    assert_error(
        ttl(),
        quote!(
            fn f(x: Option<&str>) -> u32 {
                1
            }
        ),
        &["borrow only at the top level"],
    );
    assert_error(
        ttl(),
        quote!(
            fn f<'a>(x: Cow<'a, str>) -> u32 {
                1
            }
        ),
        &["borrow only at the top level"],
    );
    assert_error(
        ttl(),
        quote!(
            fn f(x: &str) -> &str {
                x
            }
        ),
        &["can't return a borrow"],
    );
    assert_error(
        ttl(),
        quote!(
            fn f(x: u32) -> ! {
                loop {}
            }
        ),
        &["never returns"],
    );
    assert_error(
        ttl(),
        quote!(
            fn f(x: u32) -> Self {
                1
            }
        ),
        &["`Self`"],
    );
    assert_error(
        ttl(),
        quote!(
            fn f(#[cfg(x)] x: u32) -> u32 {
                1
            }
        ),
        &["conditional arguments"],
    );
    assert_error(
        ttl(),
        quote!(
            fn f(a: u8, b: u8, c: u8, d: u8, e: u8, f: u8, g: u8, h: u8, i: u8) -> u8 {
                1
            }
        ),
        &["at most 8 arguments"],
    );
    assert_error(
        quote!(ttl = "1s", sync_readers),
        quote!(
            async fn f() -> u32 {
                1
            }
        ),
        &["`sync_readers` can't be used on an `async fn`"],
    );
}

#[test]
fn accepted_signatures() {
    let ttl = || quote!(ttl = "1s");
    for item in [
        quote!(
            fn f() {}
        ),
        quote!(
            fn f() -> () {}
        ),
        quote!(
            fn f(_: u32, mut y: u32, _z: u32) -> u32 {
                1
            }
        ),
        quote!(
            fn f<'a>(x: &'a str) -> String {
                x.into()
            }
        ),
        quote!(
            fn f(x: &'static str, y: Option<&'static str>) -> &'static str {
                x
            }
        ),
        quote!(
            fn f(x: (u8, String), y: [u8; 4], z: &[u8]) -> Vec<u8> {
                todo!()
            }
        ),
        quote!(
            fn f(a: u8, b: u8, c: u8, d: u8, e: u8, f: u8, g: u8, h: u8, _: u8) -> u8 {
                1
            }
        ),
        quote!(
            pub(crate) async fn f(x: &str) -> anyhow::Result<String> {
                todo!()
            }
        ),
        quote!(
            fn f(x: u32) -> Result<(), String> {
                Ok(())
            }
        ),
    ] {
        let errors = errors(ttl(), item.clone());
        assert!(errors.is_empty(), "{item}: {errors:?}");
    }
}

#[test]
fn collects_every_error() {
    let errors = errors(
        quote!(ttl = 5, colour, background = 1, ttl = "1s"),
        quote!(
            const fn f<T>(self, x: impl Hash, y: &mut u8) -> impl Clone {
                1
            }
        ),
    );
    // ttl = 5, colour, background = 1, repeated ttl, const, <T>, self, impl Hash, &mut, impl Clone
    assert_eq!(errors.len(), 10, "{errors:#?}");
}

#[test]
fn rejected_input_keeps_the_fn() {
    let out = attribute(
        quote!(ttl = "nope"),
        quote!(
            pub fn f(x: u32) -> u32 {
                x + 1
            }
        ),
    );
    let file: syn::File = syn::parse2(out.clone()).unwrap();
    // The compile_error! invocation and the fn, untouched.
    assert_eq!(file.items.len(), 2, "{out}");
    assert!(
        out.to_string()
            .contains("pub fn f (x : u32) -> u32 { x + 1 }"),
        "{out}"
    );
    assert!(out.to_string().contains("compile_error"), "{out}");

    let out = attribute(
        quote!(ttl = "1s"),
        quote!(
            struct S;
        ),
    );
    assert!(out.to_string().contains("#[dogpile] goes on a fn"), "{out}");
    assert!(out.to_string().contains("struct S ;"), "{out}");
}

/// Every combination of some attribute and fn fragments, valid or not, expands to
/// something that parses: no panic, no malformed output.
#[test]
fn never_panics() {
    let args: Vec<TokenStream> = vec![
        quote!(),
        quote!(ttl = "1s"),
        quote!(ttl = "1s",),
        quote!(,),
        quote!(ttl = "1s", sync_readers, background, stale_if_error),
        quote!(ttl = "1s", background, stale_if_error),
        quote!(ttl = "1s", sync_readers),
        quote!(
            ttl = "1s",
            capacity = 1,
            max_stale = "1h",
            name = N,
            crate = ::x
        ),
        quote!(ttl = "99999999999999999999999999999999y"),
        quote!(ttl = "1s", name = r#fn),
        quote!(ttl = "1s", name = self),
        quote!(ttl = [1, 2], capacity = { 3 }, name = (A)),
        quote!(ttl = = "1s"),
        quote!(crate = crate, ttl = 'c'),
        quote!(ttl = "1s" "2s"),
        quote!(= ttl),
        quote!(ttl = "1s"; background),
        "#ttl".parse().unwrap(),
        quote!(ttl = -1),
        quote!(ttl = b"1s", max_stale = 1.5),
        quote!(ttl = "1s", clock = C::<A, B>::new(), clock),
        quote!(ttl = "1s", clock = |a, b| a, background),
        quote!(ttl = "1s", clock = if x { y } else { z } w),
    ];
    let items: Vec<TokenStream> = vec![
        quote!(
            fn f() {}
        ),
        quote!(
            fn f(x: u32) -> u32 {
                x
            }
        ),
        quote!(
            async fn f(x: &str, _: u8, mut y: String) -> Result<String, E> {
                todo!()
            }
        ),
        quote!(
            fn f(&self) -> Self {
                todo!()
            }
        ),
        quote!(
            pub unsafe extern "C" fn f(x: u32, ...) -> u32 {
                x
            }
        ),
        quote!(
            fn f<'a, T, const N: usize>(x: &'a T) -> [T; N]
            where
                T: Copy,
            {
                todo!()
            }
        ),
        quote!(
            fn f(S { a, b }: S, [x, y]: [u8; 2], (p): u8, q @ 1..=2: u8) -> u8 {
                0
            }
        ),
        quote!(
            fn f(x: &&&str, y: Result, z: Result) -> Result<'static> {
                todo!()
            }
        ),
        quote!(
            fn f(x: <T as Trait>::Assoc, y: fn(&str) -> &str, z: Box<dyn Fn(&u8)>) -> m!() {
                0
            }
        ),
        quote!(
            fn 東京(ünï: Ça) -> Ünï {
                0
            }
        ),
        quote!(
            fn _x() {}
        ),
        quote!(
            fn r#loop(r#in: u8) -> u8 {
                0
            }
        ),
        quote!(
            struct NotAFn;
        ),
        quote!(),
        quote!(fn),
        quote!(impl X { fn f() {} }),
    ];
    for a in &args {
        for i in &items {
            let out = attribute(a.clone(), i.clone());
            if let Err(e) = syn::parse2::<syn::File>(out.clone()) {
                // Only the non-items in `items` may fail to re-parse, and only because they were
                // emitted back unchanged.
                assert!(
                    syn::parse2::<syn::File>(i.clone()).is_err(),
                    "#[dogpile({a})] {i}\n=> {out}\n{e}"
                );
            }
        }
    }
}

#[test]
fn key_skip_none_and_field_errors() {
    let f = || {
        quote!(
            fn f(db: &Pool, id: u64) -> Option<u32> {
                None
            }
        )
    };
    assert!(errors(quote!(ttl = "1s", key = id, skip_none), f()).is_empty());
    assert!(errors(quote!(ttl = "1s", key = (id, db)), f()).is_empty());
    assert!(errors(quote!(ttl = "1s", key(u64) = id + 1), f()).is_empty());
    assert!(errors(quote!(ttl = "1s", key = ()), f()).is_empty());
    assert_error(
        quote!(ttl = "1s", key = user),
        f(),
        &["`key` names `user`", "its arguments are `db`, `id`"],
    );
    assert_error(
        quote!(ttl = "1s", key = (id, id)),
        f(),
        &["`id` is named twice"],
    );
    assert_error(
        quote!(ttl = "1s", key = id.0),
        f(),
        &["write the key's type once: `key(T) = id . 0`"],
    );
    assert_error(quote!(ttl = "1s", key(u64)), f(), &["`key` needs a value"]);
    assert_error(
        quote!(ttl = "1s", key(1 + 1) = id),
        f(),
        &["expected the key's type in `key(..)`"],
    );
    assert_error(
        quote!(ttl = "1s", background, key = id),
        f(),
        &["can't borrow `db`, which is not named in `key`"],
    );
    assert_error(
        quote!(ttl = "1s", skip_none),
        quote!(
            fn g(id: u64) -> u32 {
                1
            }
        ),
        &[
            "`skip_none` needs a fn that returns `Option<T>`",
            "returns `u32`",
        ],
    );
    assert_error(
        quote!(field = cache, capacity = 5),
        quote!(
            fn m(&self, id: u64) -> u32 {
                1
            }
        ),
        &["`capacity` is set where that field is built"],
    );
    assert_error(
        quote!(field = cache),
        f(),
        &["`field` is for `&self` methods"],
    );
}

#[test]
fn a_single_key_part_is_the_key_itself() {
    let out = expanded(
        quote!(ttl = "1s", key = id),
        quote!(
            fn f(db: &Pool, id: u64) -> u32 {
                1
            }
        ),
    );
    // Keyed by `u64`, looked up by `&&id`, and `db` reaches the body untouched.
    assert_contains(&out, "__cache . dogpile_get (& & id , || f_no_cache (db , { use :: dogpile :: __private :: Parts as _ ; __cache . dogpile_clone (& id) }))");
    assert_contains(&out, "# [cfg (doc)] static F : :: dogpile :: __private :: LazyLock < :: dogpile :: Cache < u64 , u32 , :: dogpile :: mode :: Inline > >");
}

#[test]
fn an_associated_fn_gets_an_associated_handle_not_a_static() {
    let marked = expanded(
        quote!(ttl = "1m", associated),
        quote!(
            fn lookup(id: u64) -> u64 {
                id
            }
        ),
    );
    assert!(!marked.contains("compile_error"), "{marked}");
    assert!(!marked.contains("staticLOOKUP"), "{marked}");
    assert_contains(&marked, "fn lookup_cache() -> &'static");
    assert_contains(&marked, "Self::lookup_no_cache(");
    assert_contains(
        &marked,
        "let __cache = ::dogpile::__private::handle(Self::lookup_cache());",
    );
    // A free fn keeps its `static`.
    let free = expanded(
        quote!(ttl = "1m"),
        quote!(
            fn lookup(id: u64) -> u64 {
                id
            }
        ),
    );
    assert!(free.contains("staticLOOKUP"), "{free}");
    assert!(!free.contains("lookup_cache"), "{free}");
}

#[test]
fn naming_self_outside_nested_items_and_macros_marks_an_associated_fn() {
    let in_impl = |item: TokenStream| expanded(quote!(ttl = "1m"), item).contains("lookup_cache");
    assert!(in_impl(quote!(
        fn lookup(id: u64) -> u64 {
            Self::twice(id)
        }
    )));
    assert!(in_impl(quote!(
        fn lookup(id: u64) -> u64 {
            if id > 1 {
                <Self>::X
            } else {
                0
            }
        }
    )));
    let keyed = expanded(
        quote!(ttl = "1m", key = id),
        quote!(
            fn lookup(repo: &Self, id: u64) -> u64 {
                id
            }
        ),
    );
    assert!(
        keyed.contains("lookup_cache") && !keyed.contains("compile_error"),
        "{keyed}"
    );
    // `Self` of a nested item or inside a macro's tokens says nothing about the fn.
    assert!(!in_impl(quote!(
        fn lookup(id: u64) -> u64 {
            struct Twice(u64);
            impl Twice {
                fn new(id: u64) -> Self {
                    Twice(2 * id)
                }
            }
            Twice::new(id).0
        }
    )));
    assert!(!in_impl(quote!(
        fn lookup(id: u64) -> u64 {
            make!(Self);
            id
        }
    )));
    assert!(!in_impl(quote!(
        fn lookup(id: u64) -> u64 {
            id
        }
    )));
}

#[test]
fn associated_on_a_method_is_an_error() {
    assert_error(
        quote!(ttl = "1m", key = id, associated),
        quote!(
            fn f(&self, id: u64) -> u64 {
                id
            }
        ),
        &[
            "`associated` is for associated fns without `self`",
            "f_cache()",
        ],
    );
    assert_error(
        quote!(ttl = "1m", associated = true),
        quote!(
            fn f(id: u64) -> u64 {
                id
            }
        ),
        &["`associated` is a flag"],
    );
}
