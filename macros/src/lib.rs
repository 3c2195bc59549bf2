//! `#[baton::main]` and `#[baton::test]`: an `async fn` run to completion on
//! a baton runtime of its own.
//!
//! Use them through the `baton` crate (feature `macros`, on by default), as
//! `#[baton::main]` and `#[baton::test]`: the code they generate names the
//! runtime through `::baton`, so a crate that uses them depends on `baton`
//! alone. A crate that renames its `baton` dependency says so with
//! `crate = "name"`.
//!
//! The expansion calls one hidden function of the facade,
//! `baton::__private::block_on(worker_threads, future)`, which builds the
//! runtime with `baton::Builder` and blocks on the future: nothing else of
//! the facade is named, so its public API can change without touching the
//! macros.

use proc_macro::TokenStream;
use proc_macro2::{Span, TokenStream as TokenStream2};
use quote::{ToTokens, TokenStreamExt, quote};
use syn::parse::Parser;
use syn::punctuated::Punctuated;
use syn::spanned::Spanned;
use syn::{AttrStyle, Attribute, Expr, ExprLit, ItemFn, Lit, Meta, Token};

/// Runs an `async fn main` on a baton runtime.
///
/// The function becomes a plain `fn` of the same name, visibility, return
/// type and attributes, which builds a runtime and blocks on the body (in a
/// copy of the calling thread's context, as every `block_on` does). When
/// the body returns, the runtime is dropped: tasks still running are
/// cancelled.
///
/// ```
/// use baton::{ContextVar, spawn};
///
/// static USER: ContextVar<&str> = ContextVar::new("user");
///
/// #[baton::main]
/// async fn main() {
///     let _token = USER.set("alice");
///     let seen = spawn(async { USER.get() }).await.unwrap();
///     assert_eq!(seen, Some("alice"));
/// }
/// ```
///
/// # Arguments
///
/// * `worker_threads = N`: the number of worker threads (at least 1;
///   default: one per CPU), as `Builder::worker_threads(N)`.
/// * `crate = "path"`: where the `baton` crate is, for a crate that renamed
///   its dependency (default `::baton`).
///
/// The return type is kept, so `main` may return a `Result`:
///
/// ```
/// #[baton::main(worker_threads = 2)]
/// async fn main() -> Result<(), std::num::ParseIntError> {
///     assert_eq!(baton::Handle::current().metrics().workers, 2);
///     let n: u32 = "42".parse()?;
///     assert_eq!(n, 42);
///     Ok(())
/// }
/// ```
///
/// # Panics
///
/// The generated `main` panics if the runtime's threads cannot be started.
#[proc_macro_attribute]
pub fn main(args: TokenStream, item: TokenStream) -> TokenStream {
    expand(Kind::Main, args.into(), item.into()).into()
}

/// Runs an `async fn` test on a fresh baton runtime.
///
/// The function becomes a `#[test]` that builds a runtime of its own, blocks
/// on the body and drops the runtime: tests never share a runtime, its
/// workers, its counters or its tasks. The body runs in a copy of the test
/// thread's context, empty as every new thread's is.
///
/// Other attributes are kept as they are (`#[should_panic]`, `#[ignore]`,
/// doc comments), and so is the return type: a test may return a `Result`.
/// Do not add `#[test]` yourself: the macro adds it. (A glob import,
/// `use baton::*`, brings this macro in as `test` too, and makes a plain
/// `#[test]` ambiguous: import names one by one.)
///
/// ```no_run
/// use baton::{ContextVar, Handle, spawn};
///
/// static REQUEST_ID: ContextVar<u32> = ContextVar::new("request_id");
///
/// #[baton::test]
/// async fn children_inherit_the_request_id() {
///     let _token = REQUEST_ID.set(7);
///     assert_eq!(spawn(async { REQUEST_ID.get() }).await.unwrap(), Some(7));
/// }
///
/// #[baton::test(worker_threads = 2)]
/// async fn on_two_workers() -> Result<(), baton::JoinError> {
///     assert_eq!(Handle::current().metrics().workers, 2);
///     spawn(async {}).await
/// }
///
/// #[baton::test]
/// #[should_panic(expected = "boom")]
/// async fn panics() {
///     spawn(async { panic!("boom") }).await.unwrap();
/// }
/// # fn main() {}
/// ```
///
/// # Arguments
///
/// The same as [`macro@main`]'s: `worker_threads = N` and `crate = "path"`.
#[proc_macro_attribute]
pub fn test(args: TokenStream, item: TokenStream) -> TokenStream {
    expand(Kind::Test, args.into(), item.into()).into()
}

/// Which macro is expanding.
#[derive(Clone, Copy)]
enum Kind {
    Main,
    Test,
}

impl Kind {
    /// The macro as the user writes it, for messages.
    fn attr(self) -> &'static str {
        match self {
            Kind::Main => "#[baton::main]",
            Kind::Test => "#[baton::test]",
        }
    }
}

/// The arguments, once parsed.
struct Config {
    worker_threads: Option<usize>,
    krate: Option<syn::Path>,
}

/// The arguments the macros take, for the message about an unknown one.
const VALID: &str = "`worker_threads = N` and `crate = \"path\"`";

/// Several errors, reported together.
#[derive(Default)]
struct Errors(Option<syn::Error>);

impl Errors {
    fn push(&mut self, span: Span, message: impl std::fmt::Display) {
        let error = syn::Error::new(span, message);
        match &mut self.0 {
            Some(all) => all.combine(error),
            None => self.0 = Some(error),
        }
    }

    fn to_compile_error(&self) -> TokenStream2 {
        self.0
            .as_ref()
            .map(syn::Error::to_compile_error)
            .unwrap_or_default()
    }
}

fn expand(kind: Kind, args: TokenStream2, item: TokenStream2) -> TokenStream2 {
    let mut errors = Errors::default();
    let config = parse_args(kind, args, &mut errors);
    let Ok(function) = syn::parse2::<ItemFn>(item.clone()) else {
        errors.push(
            Span::call_site(),
            format_args!("{} goes on an `async fn`", kind.attr()),
        );
        // The item as it was, so that it is not reported missing as well.
        let errors = errors.to_compile_error();
        return quote! { #errors #item };
    };
    let expanded = if check_signature(kind, &function, &mut errors) {
        generate(kind, &config, function)
    } else {
        placeholder(function)
    };
    let errors = errors.to_compile_error();
    quote! { #errors #expanded }
}

/// Parses `worker_threads = N, crate = "path"`, each at most once.
fn parse_args(kind: Kind, args: TokenStream2, errors: &mut Errors) -> Config {
    let mut config = Config {
        worker_threads: None,
        krate: None,
    };
    let metas = match Punctuated::<Meta, Token![,]>::parse_terminated.parse2(args) {
        Ok(metas) => metas,
        Err(e) => {
            errors.push(
                e.span(),
                format_args!(
                    "{} takes arguments of the form `name = value`: {VALID}",
                    kind.attr()
                ),
            );
            return config;
        }
    };
    let mut seen_workers = false;
    let mut seen_crate = false;
    for meta in metas {
        let path = meta.path();
        let name = path.to_token_stream().to_string().replace(' ', "");
        let seen = if path.is_ident("worker_threads") {
            &mut seen_workers
        } else if path.is_ident("crate") {
            &mut seen_crate
        } else {
            errors.push(
                path.span(),
                format_args!(
                    "unknown argument `{name}` to {}; the valid arguments are {VALID}",
                    kind.attr()
                ),
            );
            continue;
        };
        if std::mem::replace(seen, true) {
            errors.push(
                path.span(),
                format_args!("duplicate argument `{name}` to {}", kind.attr()),
            );
            continue;
        }
        let Meta::NameValue(pair) = &meta else {
            let example = if name == "crate" {
                "crate = \"baton\""
            } else {
                "worker_threads = 4"
            };
            errors.push(
                meta.span(),
                format_args!("`{name}` takes a value: write `{example}`"),
            );
            continue;
        };
        if name == "crate" {
            config.krate = parse_crate(&pair.value, errors);
        } else {
            config.worker_threads = parse_worker_threads(&pair.value, errors);
        }
    }
    config
}

/// `worker_threads = N`: an integer literal, at least 1.
fn parse_worker_threads(value: &Expr, errors: &mut Errors) -> Option<usize> {
    const USAGE: &str =
        "`worker_threads` takes a positive integer literal, e.g. `worker_threads = 4`";
    let Expr::Lit(ExprLit {
        lit: Lit::Int(int), ..
    }) = value
    else {
        errors.push(value.span(), USAGE);
        return None;
    };
    match int.base10_parse::<usize>() {
        Ok(0) => {
            errors.push(int.span(), "`worker_threads` must be at least 1");
            None
        }
        Ok(n) => Some(n),
        Err(_) => {
            errors.push(int.span(), USAGE);
            None
        }
    }
}

/// `crate = "path"`: a path in a string literal.
fn parse_crate(value: &Expr, errors: &mut Errors) -> Option<syn::Path> {
    const USAGE: &str =
        "`crate` takes the path of the baton crate in a string, e.g. `crate = \"baton\"`";
    match value {
        Expr::Lit(ExprLit {
            lit: Lit::Str(s), ..
        }) => match s.parse::<syn::Path>() {
            Ok(path) => Some(path),
            Err(_) => {
                errors.push(s.span(), USAGE);
                None
            }
        },
        _ => {
            errors.push(value.span(), USAGE);
            None
        }
    }
}

/// Reports what the macro cannot turn into a runnable `fn`. Returns whether
/// the signature can be expanded as it is (a missing `async` or an extra
/// `#[test]` is reported, yet the body can still be type-checked).
fn check_signature(kind: Kind, function: &ItemFn, errors: &mut Errors) -> bool {
    let sig = &function.sig;
    let attr = kind.attr();
    let mut expandable = true;
    if sig.asyncness.is_none() {
        errors.push(
            sig.fn_token.span,
            format_args!("{attr} needs an `async fn`: add `async` before `fn`"),
        );
    }
    if !sig.inputs.is_empty() || sig.variadic.is_some() {
        let what = match kind {
            Kind::Main => "`main`",
            Kind::Test => "a test",
        };
        errors.push(
            sig.paren_token.span.join(),
            format_args!("{attr} functions take no parameters: {what} is called with none"),
        );
        expandable = false;
    }
    if !sig.generics.params.is_empty() {
        errors.push(
            sig.generics.span(),
            format_args!("{attr} functions cannot be generic"),
        );
        expandable = false;
    }
    if let Kind::Test = kind {
        for attribute in function.attrs.iter().filter(|a| is_test_attr(a)) {
            errors.push(
                attribute.path().span(),
                "#[baton::test] adds `#[test]` itself: remove this one",
            );
        }
    }
    expandable
}

/// `#[test]`, `#[core::prelude::v1::test]` and the like.
fn is_test_attr(attribute: &Attribute) -> bool {
    let path = attribute.path();
    path.segments.last().is_some_and(|s| s.ident == "test")
        && (path.segments.len() == 1
            || path
                .segments
                .first()
                .is_some_and(|s| s.ident == "core" || s.ident == "std"))
}

/// The sync function that runs the body on a fresh runtime.
fn generate(kind: Kind, config: &Config, function: ItemFn) -> TokenStream2 {
    let ItemFn {
        attrs,
        vis,
        mut sig,
        block,
    } = function;
    sig.asyncness = None;
    // `#![...]` at the top of the body stays there; and one `#[test]` is
    // enough (an extra one is reported).
    let (inner_attrs, attrs): (Vec<Attribute>, Vec<Attribute>) = attrs
        .into_iter()
        .filter(|a| !(matches!(kind, Kind::Test) && is_test_attr(a)))
        .partition(|a| matches!(a.style, AttrStyle::Inner(_)));
    let mut body = TokenStream2::new();
    block.brace_token.surround(&mut body, |body| {
        body.append_all(&inner_attrs);
        body.append_all(&block.stmts);
    });
    let krate = config
        .krate
        .as_ref()
        .map_or_else(|| quote!(::baton), ToTokens::to_token_stream);
    let workers = match config.worker_threads {
        Some(n) => quote!(::core::option::Option::Some(#n)),
        None => quote!(::core::option::Option::None),
    };
    let test = match kind {
        Kind::Main => quote!(),
        Kind::Test => quote!(#[::core::prelude::v1::test]),
    };
    // The body becomes an `async fn` of the same name and return type,
    // nested in the sync one: it is type-checked as the user wrote it (a
    // wrong tail expression or `?` is reported where it is, against the
    // declared return type), and `return` and `?` leave it as they would
    // the `async fn`.
    let inner = syn::Signature {
        asyncness: Some(Token![async](sig.fn_token.span)),
        ..sig.clone()
    };
    let ident = &sig.ident;
    quote! {
        #test
        #(#attrs)*
        #vis #sig {
            #inner #body
            #krate::__private::block_on(#workers, #ident())
        }
    }
}

/// What stands for a function the macro cannot expand, next to the errors:
/// the same name, return type and attributes, no parameters and no body,
/// so that its errors are the only ones (no "`main` function not found").
fn placeholder(function: ItemFn) -> TokenStream2 {
    let ItemFn {
        attrs,
        vis,
        mut sig,
        ..
    } = function;
    sig.asyncness = None;
    sig.inputs = Punctuated::new();
    sig.variadic = None;
    if !sig.generics.params.is_empty() {
        // The return type may name the parameters.
        sig.generics = syn::Generics::default();
        sig.output = syn::ReturnType::Default;
    }
    let attrs = attrs
        .iter()
        .filter(|a| !is_test_attr(a) && matches!(a.style, AttrStyle::Outer));
    quote! {
        #(#attrs)*
        #vis #sig {
            ::core::unimplemented!()
        }
    }
}
