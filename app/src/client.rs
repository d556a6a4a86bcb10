//! The client behind every server function: the browser's `fetch`, plus a
//! header that a cross-site HTML form cannot send and a cross-site script
//! cannot send without a CORS preflight Portico never grants. The server
//! refuses state-changing `/_portal/fn/*` requests without it (see
//! docs/security.md, "Cross-site requests").

use std::future::Future;

use futures::{Sink, Stream};
use leptos::server_fn::Bytes;
use leptos::server_fn::client::Client;
use leptos::server_fn::client::browser::BrowserClient;
use leptos::server_fn::error::FromServerFnError;
use leptos::server_fn::request::browser::BrowserRequest;
use leptos::server_fn::response::browser::BrowserResponse;

/// Request header the portal's own client sets on every server function call.
pub const CSRF_HEADER: &str = "x-portico-csrf";

/// [`BrowserClient`] with [`CSRF_HEADER`].
pub struct PorticoClient;

impl<E, IS, OS> Client<E, IS, OS> for PorticoClient
where
    E: FromServerFnError,
    IS: FromServerFnError,
    OS: FromServerFnError,
{
    type Request = BrowserRequest;
    type Response = BrowserResponse;

    fn send(req: Self::Request) -> impl Future<Output = Result<Self::Response, E>> + Send {
        req.headers().set(CSRF_HEADER, "1");
        <BrowserClient as Client<E, IS, OS>>::send(req)
    }

    #[allow(clippy::type_complexity)]
    fn open_websocket(
        path: &str,
    ) -> impl Future<
        Output = Result<
            (impl Stream<Item = Result<Bytes, Bytes>> + Send + 'static, impl Sink<Bytes> + Send + 'static),
            E,
        >,
    > + Send {
        <BrowserClient as Client<E, IS, OS>>::open_websocket(path)
    }

    fn spawn(future: impl Future<Output = ()> + Send + 'static) {
        <BrowserClient as Client<E, IS, OS>>::spawn(future)
    }
}
