//! Why a sign-in produced no profile. Each variant's `Display` is the reason
//! Portico shows the IT admin (Test sign-in, recent attempts), sends the
//! vendor as `error_description` and records in `authentication.sso_failed`;
//! which OAuth error code a failure becomes is decided at the HTTP edge.

use super::ConnectionState;

/// The login a response names, as the store found it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum LoginState {
    #[error("this sign-in was not started here (unknown state); start again from the application")]
    Unknown,
    #[error("replayed response: this sign-in was already completed; start again from the application")]
    Replayed,
    #[error("expired sign-in: it took longer than 10 minutes at the identity provider; start again")]
    Expired,
}

/// A failed sign-in.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LoginError {
    /// The state or RelayState names no usable login.
    #[error(transparent)]
    Login(#[from] LoginState),
    /// A SAML response carried another connection's login.
    #[error("the response was posted to another connection's ACS URL")]
    WrongConnection,
    /// The assertion ID was seen before (replay cache).
    #[error("replayed assertion: this assertion was already used to sign in")]
    ReplayedAssertion,
    /// The connection signs nobody in in this state.
    #[error("{}", inactive_reason(*.0))]
    Inactive(ConnectionState),
    /// The OIDC provider answered with an error.
    #[error("the identity provider refused: {error}{}", .description.as_ref().map(|d| format!(" ({d})")).unwrap_or_default())]
    IdpRefused { error: String, description: Option<String> },
    /// The IdP's answer did not pass verification or carried no usable
    /// profile; the text says what was wrong.
    #[error("{0}")]
    Rejected(String),
    /// Portico could not do its part (reach the IdP, read its own state).
    #[error("{0}")]
    Unavailable(String),
}

fn inactive_reason(state: ConnectionState) -> &'static str {
    match state {
        ConnectionState::Draft => {
            "this connection is a draft: it signs nobody in until it is activated (Test sign-in works)"
        }
        _ => "this connection is deactivated: it signs nobody in until it is activated again",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_read_as_before() {
        assert_eq!(
            LoginError::IdpRefused { error: "access_denied".into(), description: Some("nope".into()) }.to_string(),
            "the identity provider refused: access_denied (nope)"
        );
        assert_eq!(
            LoginError::IdpRefused { error: "login_required".into(), description: None }.to_string(),
            "the identity provider refused: login_required"
        );
        assert!(LoginError::Inactive(ConnectionState::Draft).to_string().starts_with("this connection is a draft"));
        assert!(LoginError::from(LoginState::Expired).to_string().starts_with("expired sign-in"));
    }
}
