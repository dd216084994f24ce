//! Operations: response enums, the server trait with its adapters onto `klue::Handlers`, and
//! the typed client.

use crate::CodegenError;
use crate::models::{Models, Ty, doc_attrs};
use crate::names::{Scope, ident, snake_name, status_variant, type_ident, type_name};
use heck::ToUpperCamelCase;
use klue_spec::{Api, Operation, ParamLocation, Parameter, ResponseStatus};
use proc_macro2::{Ident, TokenStream};
use quote::{ToTokens, quote};
use serde_json::Value;

/// One parameter of an operation, typed.
struct Param<'a> {
    p: &'a Parameter,
    arg: Ident,
    ty: Ty,
    /// The schema's default, as JSON text.
    default: Option<String>,
}

/// The request body, typed.
struct Body {
    ty: Ty,
    required: bool,
    form: bool,
}

/// One documented response: a variant of the response enum.
struct Resp {
    status: ResponseStatus,
    variant: Ident,
    ty: Option<Ty>,
    description: String,
}

impl Resp {
    fn is_success(&self) -> bool {
        match self.status {
            ResponseStatus::Code(c) => (200..300).contains(&c),
            ResponseStatus::Range(d) => d == 2,
            ResponseStatus::Default => false,
        }
    }

    /// Whether the variant carries the status (ranges and `default`).
    fn carries_status(&self) -> bool {
        !matches!(self.status, ResponseStatus::Code(_))
    }
}

/// An operation with everything typed.
struct Op<'a> {
    op: &'a Operation,
    /// The server trait method.
    method: Ident,
    /// The client method.
    client_method: Ident,
    /// `HelloResponse`.
    response_enum: Ident,
    params: Vec<Param<'a>>,
    body: Option<Body>,
    responses: Vec<Resp>,
}

/// Generated modules of one API besides `models`.
pub struct OpsOutput {
    pub responses: TokenStream,
    pub server: Option<TokenStream>,
    pub client: TokenStream,
}

const CLIENT_RESERVED: &[&str] = &[
    "new",
    "from_client",
    "client",
    "with_timeout",
    "with_token",
    "with_request_id",
];

pub fn generate(
    api: &Api,
    models: &mut Models<'_>,
    serve: bool,
) -> Result<OpsOutput, CodegenError> {
    models.set_prefix(quote!(models::));
    let mut ops = Vec::new();
    let mut methods = Scope::new();
    let mut client_methods = Scope::with_reserved(CLIENT_RESERVED);
    let mut enums = Scope::new();
    for op in &api.operations {
        ops.push(type_op(
            models,
            op,
            &mut methods,
            &mut client_methods,
            &mut enums,
        )?);
    }
    let used_models = models.take_prefix_used();
    let models_use = |used: bool| {
        if used {
            quote!(
                use super::models;
            )
        } else {
            quote!()
        }
    };

    let responses = {
        let items = ops.iter().map(response_enum);
        let import = models_use(used_models);
        quote! {
            #import
            #(#items)*
        }
    };

    let server = if serve {
        let served: Vec<&Op> = ops.iter().filter(|o| !o.op.builtin).collect();
        Some(server(api, &served, used_models))
    } else {
        None
    };
    let client = client(api, &ops, used_models);
    Ok(OpsOutput {
        responses,
        server,
        client,
    })
}

fn type_op<'a>(
    models: &mut Models<'_>,
    op: &'a Operation,
    methods: &mut Scope,
    client_methods: &mut Scope,
    enums: &mut Scope,
) -> Result<Op<'a>, CodegenError> {
    let handler = op.handler.rsplit('.').next().unwrap_or(&op.handler);
    let method = ident(&methods.claim(&snake_name(handler)));
    let client_name = op.client_name.as_deref().unwrap_or(&op.operation_id);
    let client_name = client_name.rsplit('.').next().unwrap_or(client_name);
    let client_method = ident(&client_methods.claim(&snake_name(client_name)));
    let pascal = op.operation_id.to_upper_camel_case();
    let response_enum = type_ident(&enums.claim(&type_name(&format!("{pascal}Response"))));

    let mut args = Scope::with_reserved(&["ctx", "body", "request", "imp", "response", "call"]);
    let mut params = Vec::new();
    for p in &op.parameters {
        models.set_location(format!(
            "operation {} parameter {} ({})",
            op.operation_id,
            p.name,
            p.location.as_str()
        ));
        let ty = models.ty(
            &p.schema,
            &format!("{pascal}{}", p.name.to_upper_camel_case()),
        )?;
        let default = p.default_value().map(Value::to_string);
        params.push(Param {
            p,
            arg: ident(&args.claim(&snake_name(&p.name))),
            ty,
            default,
        });
    }

    let body = match &op.request_body {
        Some(rb) => {
            models.set_location(format!("operation {} request body", op.operation_id));
            let json = rb.json_schema();
            let form = json.is_none()
                && rb.content.iter().any(|m| {
                    m.media_type
                        .starts_with("application/x-www-form-urlencoded")
                });
            let schema = json.or_else(|| rb.content.iter().find_map(|m| m.schema.as_ref()));
            let ty = match schema {
                Some(s) => models.ty(s, &format!("{pascal}Body"))?,
                None => Ty::value(),
            };
            Some(Body {
                ty,
                required: rb.required,
                form,
            })
        }
        None => None,
    };

    let mut variants = Scope::new();
    let mut responses = Vec::new();
    for r in &op.responses {
        let name = match r.status {
            ResponseStatus::Code(c) => status_variant(c),
            ResponseStatus::Range(d) => format!("Status{d}XX"),
            ResponseStatus::Default => "Default".to_string(),
        };
        let name = variants.claim(&name);
        models.set_location(format!(
            "operation {} response {}",
            op.operation_id, r.status
        ));
        let ty = match r.json_schema() {
            Some(s) => Some(models.ty(s, &format!("{pascal}{name}Body"))?),
            None if !r.content.is_empty() => Some(Ty::value()),
            None => None,
        };
        responses.push(Resp {
            status: r.status,
            variant: type_ident(&name),
            ty,
            description: r.description.clone(),
        });
    }
    Ok(Op {
        op,
        method,
        client_method,
        response_enum,
        params,
        body,
        responses,
    })
}

fn op_doc(op: &Operation) -> TokenStream {
    let mut text = String::new();
    if let Some(s) = &op.summary {
        text.push_str(s.trim());
    }
    if let Some(d) = &op.description {
        if !text.is_empty() {
            text.push_str("\n\n");
        }
        text.push_str(d.trim());
    }
    if !text.is_empty() {
        text.push_str("\n\n");
    }
    text.push_str(&format!("`{} {}`", op.method, op.path));
    if op.auth.is_required() {
        text.push_str(" (requires a bearer JWT)");
    }
    if op.deprecated {
        text.push_str("\n\nDeprecated.");
    }
    doc_attrs(Some(&text))
}

fn status_code(r: &Resp) -> TokenStream {
    match r.status {
        ResponseStatus::Code(c) => {
            let c = proc_macro2::Literal::u16_unsuffixed(c);
            quote!(#c)
        }
        _ => quote!(*status),
    }
}

fn response_enum(o: &Op) -> TokenStream {
    let name = &o.response_enum;
    let doc = format!(" The documented responses of `{}`.", o.op.operation_id);
    let mut variants = Vec::new();
    let mut status_arms = Vec::new();
    let mut reply_arms = Vec::new();
    let mut froms = Vec::new();
    let mut type_counts = std::collections::BTreeMap::<String, usize>::new();
    for r in &o.responses {
        if let Some(t) = &r.ty {
            *type_counts.entry(t.full().to_string()).or_default() += 1;
        }
    }
    for r in &o.responses {
        let v = &r.variant;
        let vdoc = doc_attrs(Some(&format!("{}: {}", r.status, r.description)));
        let code = status_code(r);
        let status_pat = if r.carries_status() {
            quote!(status)
        } else {
            quote!(_)
        };
        match (&r.ty, r.carries_status()) {
            (Some(t), false) => {
                let t = t.full();
                variants.push(quote!(#vdoc #v(#t),));
                status_arms.push(quote!(Self::#v(_) => #code,));
                reply_arms.push(
                    quote!(Self::#v(body) => ::klue::client::support::reply(#code, Some(&body)),),
                );
                if r.is_success() && type_counts.get(&t.to_string()) == Some(&1) {
                    froms.push(quote! {
                        impl From<#t> for #name {
                            fn from(body: #t) -> Self {
                                Self::#v(body)
                            }
                        }
                    });
                }
            }
            (Some(t), true) => {
                let t = t.full();
                variants.push(quote!(#vdoc #v(u16, #t),));
                status_arms.push(quote!(Self::#v(#status_pat, _) => #code,));
                reply_arms.push(quote!(Self::#v(status, body) => ::klue::client::support::reply(*status, Some(&body)),));
            }
            (None, false) => {
                variants.push(quote!(#vdoc #v,));
                status_arms.push(quote!(Self::#v => #code,));
                reply_arms
                    .push(quote!(Self::#v => ::klue::client::support::reply::<()>(#code, None),));
            }
            (None, true) => {
                variants.push(quote!(#vdoc #v(u16),));
                status_arms.push(quote!(Self::#v(#status_pat) => #code,));
                reply_arms.push(
                    quote!(Self::#v(status) => ::klue::client::support::reply::<()>(*status, None),),
                );
            }
        }
    }
    let successes: Vec<&Resp> = o.responses.iter().filter(|r| r.is_success()).collect();
    let from_success = if successes.len() > 1 {
        let arms = successes.iter().map(|r| {
            let v = &r.variant;
            let body = match &r.ty {
                Some(t) => {
                    let t = t.full();
                    quote!(response.json::<#t>()?)
                }
                None => quote!(),
            };
            let (pat, args) = match (r.status, r.carries_status()) {
                (ResponseStatus::Code(c), _) => (
                    proc_macro2::Literal::u16_unsuffixed(c).to_token_stream(),
                    if r.ty.is_some() {
                        quote!((#body))
                    } else {
                        quote!()
                    },
                ),
                _ => (
                    quote!(status @ 200..=299),
                    if r.ty.is_some() {
                        quote!((status, #body))
                    } else {
                        quote!((status))
                    },
                ),
            };
            quote!(#pat => Ok(Self::#v #args),)
        });
        quote! {
            #[doc(hidden)]
            /// Decodes a successful answer (generated clients); other statuses are errors.
            pub fn from_success(response: ::klue::client::Response) -> Result<Self, ::klue::client::ClientError> {
                match response.status() {
                    #(#arms)*
                    _ => Err(response.into_error()),
                }
            }
        }
    } else {
        quote!()
    };
    quote! {
        #[doc = #doc]
        #[derive(Debug, Clone, PartialEq)]
        pub enum #name {
            #(#variants)*
        }

        impl #name {
            /// The HTTP status this response is sent with.
            pub fn status(&self) -> u16 {
                match self {
                    #(#status_arms)*
                }
            }

            /// The runtime's reply for this response. Error statuses whose body is a klue error
            /// (`status`, `error`, `error_description`) become an [`klue::ApiError`], so the
            /// runtime answers them like any other error (with an `error_id` and `request_id`).
            pub fn into_reply(self) -> Result<::klue::Reply, ::klue::ApiError> {
                match &self {
                    #(#reply_arms)*
                }
            }

            #from_success
        }

        #(#froms)*
    }
}

fn server(api: &Api, ops: &[&Op], used_models: bool) -> TokenStream {
    let trait_name = type_ident(&format!("{}Api", type_name(&api.name)));
    let trait_doc = format!(
        " The operations of the {} API ({} {}) that a service serving it implements.",
        api.name, api.title, api.version
    );
    let trait_doc2 = " Each method receives the request context, the validated parameters and body, and \
                      returns one of the documented responses, or an [`klue::ApiError`] for any \
                      other answer (e.g. `ApiError::new(404, \"ITEM_NOT_FOUND\", \"...\")`).";
    let mut methods = Vec::new();
    let mut adapters = Vec::new();
    for o in ops {
        let m = &o.method;
        let doc = op_doc(o.op);
        let resp = &o.response_enum;
        let mut args = Vec::new();
        let mut extract = Vec::new();
        let mut call_args = Vec::new();
        for p in &o.params {
            let arg = &p.arg;
            let inner = &p.ty.tokens;
            let required = p.p.required || p.default.is_some();
            let ty = if required && !p.ty.nullable {
                quote!(#inner)
            } else {
                quote!(Option<#inner>)
            };
            args.push(quote!(#arg: #ty));
            let (map, loc) = match p.p.location {
                ParamLocation::Path => (quote!(request.path), quote!(Path)),
                ParamLocation::Query => (quote!(request.query), quote!(Query)),
                ParamLocation::Header => (quote!(request.headers), quote!(Header)),
                ParamLocation::Cookie => (quote!(request.cookies), quote!(Cookie)),
            };
            let name = &p.p.name;
            extract.push(match &p.default {
                Some(default) if !p.ty.nullable => quote! {
                    let #arg: #ty = ::klue::client::support::param_or(&mut #map, ::klue::FieldLocation::#loc, #name, #default)?;
                },
                _ => quote! {
                    let #arg: #ty = ::klue::client::support::param(&mut #map, ::klue::FieldLocation::#loc, #name)?;
                },
            });
            call_args.push(quote!(#arg));
        }
        if let Some(b) = &o.body {
            let inner = &b.ty.tokens;
            let ty = if b.required && !b.ty.nullable {
                quote!(#inner)
            } else {
                quote!(Option<#inner>)
            };
            args.push(quote!(body: #ty));
            extract.push(quote!(let body: #ty = ::klue::client::support::body(request.body)?;));
            call_args.push(quote!(body));
        }
        methods.push(quote! {
            #doc
            fn #m(&self, ctx: ::klue::RequestContext, #(#args),*)
                -> impl ::std::future::Future<Output = Result<#resp, ::klue::ApiError>> + Send;
        });
        let id = &o.op.operation_id;
        // Parameters are taken out of the request's maps.
        let request = if o.params.is_empty() {
            quote!(request)
        } else {
            quote!(mut request)
        };
        adapters.push(quote! {
            .with(#id, {
                let imp = ::std::sync::Arc::clone(&imp);
                move |#request: ::klue::Request| {
                    let imp = ::std::sync::Arc::clone(&imp);
                    async move {
                        #(#extract)*
                        imp.#m(request.ctx, #(#call_args),*).await?.into_reply()
                    }
                }
            })
        });
    }
    let models_import = if used_models {
        quote!(
            use super::models;
        )
    } else {
        quote!()
    };
    let unused = if ops.is_empty() {
        quote!(let _ = imp;)
    } else {
        quote!()
    };
    quote! {
        #models_import
        pub use super::responses::*;

        #[doc = #trait_doc]
        ///
        #[doc = #trait_doc2]
        pub trait #trait_name: Send + Sync + 'static {
            #(#methods)*
        }

        /// Binds an implementation to the operations it serves, for
        /// `klue::ServiceBuilder::serve`.
        pub fn handlers<T: #trait_name>(imp: T) -> ::klue::Handlers {
            let imp = ::std::sync::Arc::new(imp);
            #unused
            ::klue::Handlers::new()
                #(#adapters)*
        }
    }
}

fn client(api: &Api, ops: &[Op], used_models: bool) -> TokenStream {
    let name = type_ident(&format!("{}Client", type_name(&api.name)));
    let doc = format!(
        " A typed client for the {} API ({} {}).",
        api.name, api.title, api.version
    );
    let mut methods = Vec::new();
    for o in ops {
        let m = &o.client_method;
        let doc = op_doc(o.op);
        let method = type_ident(o.op.method.as_str());
        let path = &o.op.path;
        let mut args = Vec::new();
        let mut build = Vec::new();
        for p in &o.params {
            let arg = &p.arg;
            let inner = &p.ty.tokens;
            let borrowed = if p.ty.string {
                quote!(&str)
            } else if let Some(item) = &p.ty.vec_item {
                quote!(&[#item])
            } else if p.ty.copy {
                quote!(#inner)
            } else {
                quote!(&#inner)
            };
            let optional = !p.p.required || p.ty.nullable;
            args.push(if optional {
                quote!(#arg: Option<#borrowed>)
            } else {
                quote!(#arg: #borrowed)
            });
            let pname = &p.p.name;
            let explode = p.p.explode;
            build.push(match p.p.location {
                ParamLocation::Path => quote!(.path(#pname, &#arg)),
                ParamLocation::Query => quote!(.query(#pname, &#arg, #explode)),
                ParamLocation::Header => quote!(.header(#pname, &#arg)),
                ParamLocation::Cookie => quote!(.cookie(#pname, &#arg)),
            });
        }
        if let Some(b) = &o.body {
            let inner = &b.ty.tokens;
            let optional = !b.required || b.ty.nullable;
            args.push(if optional {
                quote!(body: Option<&#inner>)
            } else {
                quote!(body: &#inner)
            });
            build.push(if b.form {
                quote!(.form(&body))
            } else {
                quote!(.json(&body))
            });
        }
        let successes: Vec<&Resp> = o.responses.iter().filter(|r| r.is_success()).collect();
        let single = match successes.as_slice() {
            [one] => Some(*one),
            [] => o
                .responses
                .iter()
                .find(|r| r.status == ResponseStatus::Default),
            _ => None,
        };
        let (ret, decode) = match single {
            Some(r) => match &r.ty {
                Some(t) => {
                    let t = t.full();
                    (quote!(#t), quote!(response.json::<#t>()))
                }
                None => (quote!(()), quote!(Ok(()))),
            },
            None if successes.is_empty() => (quote!(()), quote!(Ok(()))),
            None => {
                let e = &o.response_enum;
                (
                    quote!(super::responses::#e),
                    quote!(super::responses::#e::from_success(response)),
                )
            }
        };
        let check = if single.is_some() || successes.is_empty() {
            quote! {
                if !response.is_success() {
                    return Err(response.into_error());
                }
            }
        } else {
            quote!()
        };
        methods.push(quote! {
            #doc
            pub async fn #m(&self, #(#args),*) -> Result<#ret, ::klue::client::ClientError> {
                let call = ::klue::client::Call::new(::klue::client::Method::#method, #path) #(#build)*;
                let response = self.inner.send(call).await?;
                #check
                #decode
            }
        });
    }
    let models_import = if used_models {
        quote!(
            use super::models;
        )
    } else {
        quote!()
    };
    quote! {
        #models_import

        #[doc = #doc]
        ///
        /// Calls go to `base_url` + the operation's path. Each call propagates the current
        /// request's `X-Request-Id` and, when configured, sends or forwards a bearer token;
        /// see [`klue::client::ClientConfig`] for timeouts and retries.
        #[derive(Debug, Clone)]
        pub struct #name {
            inner: ::klue::client::Client,
        }

        impl #name {
            /// A client with this configuration.
            pub fn new(config: ::klue::client::ClientConfig) -> Result<Self, ::klue::client::ClientError> {
                Ok(Self { inner: ::klue::client::Client::new(config)? })
            }

            /// A client sharing an existing runtime client (and its connection pool).
            pub fn from_client(inner: ::klue::client::Client) -> Self {
                Self { inner }
            }

            /// The runtime client.
            pub fn client(&self) -> &::klue::client::Client {
                &self.inner
            }

            /// The same client with another timeout for each call made through it.
            pub fn with_timeout(&self, timeout: ::std::time::Duration) -> Self {
                Self { inner: self.inner.with_timeout(timeout) }
            }

            /// The same client sending this bearer token.
            pub fn with_token(&self, token: impl Into<String>) -> Self {
                Self { inner: self.inner.with_token(token) }
            }

            /// The same client sending this `X-Request-Id` (instead of the current request's).
            pub fn with_request_id(&self, request_id: impl Into<String>) -> Self {
                Self { inner: self.inner.with_request_id(request_id) }
            }

            #(#methods)*
        }
    }
}
