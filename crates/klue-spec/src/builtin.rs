//! Merging klue's built-in API into every API, and documenting the error answers klue's
//! runtime gives on its own (400, 401, 413, 415) where the spec does not.

use crate::ctx::Ctx;
use crate::operations::{Built, route_shape};
use crate::{MediaType, Operation, Response, ResponseStatus};
use serde_json::json;
use std::collections::HashMap;

/// Reports API operations that take a built-in's route or operation id, and duplicate
/// operation ids or routes within the API.
pub(crate) fn check_conflicts(ctx: &mut Ctx, ops: &[Built], builtins: &[Built]) {
    let mut ids: HashMap<&str, &Operation> = HashMap::new();
    let mut routes: HashMap<(crate::Method, String), &Operation> = HashMap::new();
    for b in builtins {
        ids.insert(&b.op.operation_id, &b.op);
        routes.insert((b.op.method, route_shape(&b.op.path)), &b.op);
    }
    for Built { op, .. } in ops {
        let mut report = |message: String| {
            ctx.errors.push(crate::SpecError {
                file: op.location.file.clone(),
                pointer: op.location.pointer.clone(),
                line: op.location.line,
                message,
            })
        };
        match ids.get(op.operation_id.as_str()) {
            Some(other) if other.builtin => report(format!(
                "operation id `{}` is reserved by klue's built-in {} {}",
                op.operation_id, other.method, other.path
            )),
            Some(other) => report(format!(
                "duplicate operation id `{}`: also used at {}",
                op.operation_id, other.location
            )),
            None => {
                ids.insert(&op.operation_id, op);
            }
        }
        match routes.get(&(op.method, route_shape(&op.path))) {
            Some(other) if other.builtin => report(format!(
                "{} {} is reserved by klue (built-in operation `{}`)",
                op.method, op.path, other.operation_id
            )),
            Some(other) => report(format!(
                "{} {} has the same route as {} {} at {}",
                op.method, op.path, other.method, other.path, other.location
            )),
            None => {
                routes.insert((op.method, route_shape(&op.path)), op);
            }
        }
    }
}

/// Adds the error responses klue's runtime can answer with, unless the spec documents the
/// status (exactly or by range): 400 with parameters or a body, 401 with auth, 413 and 415
/// with a body. Each answers the `Error` schema.
pub(crate) fn add_error_responses(op: &mut Operation) {
    let has_body = op.request_body.is_some();
    let wanted = [
        (
            400,
            !op.parameters.is_empty() || has_body,
            "Invalid parameter or body (INVALID_PARAMETER).",
        ),
        (
            401,
            op.auth.is_required(),
            "Missing, invalid or expired token (UNAUTHORIZED).",
        ),
        (413, has_body, "Request body too large (PAYLOAD_TOO_LARGE)."),
        (
            415,
            has_body,
            "Unsupported request media type (UNSUPPORTED_MEDIA_TYPE).",
        ),
    ];
    for (code, needed, description) in wanted {
        let documented = op
            .responses
            .iter()
            .any(|r| !matches!(r.status, ResponseStatus::Default) && r.status.matches(code));
        if needed && !documented {
            op.responses.push(Response {
                status: ResponseStatus::Code(code),
                description: description.into(),
                content: vec![MediaType {
                    media_type: "application/json".into(),
                    schema: Some(json!({"$ref": "#/$defs/Error"})),
                }],
            });
        }
    }
}
