//! One error shape for every service: the AWS error code, the message, and
//! whether retrying may help. The SDK's error types differ per operation;
//! the provider only needs these three facts.

use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

#[derive(Debug, Clone)]
pub struct AwsError {
    pub code: Option<String>,
    pub message: String,
    pub status: Option<u16>,
    /// No response at all (timeout, connection error): the call may or may not have happened.
    pub no_response: bool,
}

impl AwsError {
    pub fn is(&self, code: &str) -> bool {
        self.code.as_deref() == Some(code)
    }

    pub fn not_found(&self) -> bool {
        self.status == Some(404)
            || self.code.as_deref().is_some_and(|c| {
                c.ends_with("NotFound")
                    || c.ends_with("NotFoundException")
                    // RDS: `DBSubnetGroupNotFoundFault`.
                    || c.ends_with("NotFoundFault")
                    || c.starts_with("NoSuch")
                    || c == "ResourceNotFoundException"
            })
    }

    pub fn throttled(&self) -> bool {
        self.status == Some(429)
            || self.code.as_deref().is_some_and(|c| {
                matches!(
                    c,
                    "Throttling"
                        | "ThrottlingException"
                        | "RequestLimitExceeded"
                        | "TooManyRequestsException"
                        | "SlowDown"
                        | "RequestThrottled"
                        | "PriorRequestNotComplete"
                )
            })
    }

    /// Worth another try: throttled, a server error, or no response.
    pub fn retryable(&self) -> bool {
        self.no_response || self.throttled() || self.status.is_some_and(|s| s >= 500)
    }
}

impl std::fmt::Display for AwsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.code {
            Some(c) => write!(f, "{c}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

impl std::error::Error for AwsError {}

/// Converts any SDK error.
pub fn describe<E, R>(e: &SdkError<E, R>) -> AwsError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug + HasStatus,
{
    match e {
        SdkError::ServiceError(se) => {
            let err = se.err();
            AwsError {
                code: err.code().map(str::to_string),
                message: err
                    .message()
                    .map(str::to_string)
                    .unwrap_or_else(|| err.to_string()),
                status: Some(se.raw().status_code()),
                no_response: false,
            }
        }
        SdkError::DispatchFailure(_) if aws_smithy_types::error::display::DisplayErrorContext(e).to_string().contains("loading credentials") => AwsError {
            code: Some("NoCredentials".into()),
            message: "no usable AWS credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, choose a profile with --profile or AWS_PROFILE, or run `aws sso login`".into(),
            status: None,
            no_response: false,
        },
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) => AwsError {
            code: None,
            message: format!(
                "no response from AWS: {}",
                aws_smithy_types::error::display::DisplayErrorContext(e)
            ),
            status: None,
            no_response: true,
        },
        SdkError::ResponseError(r) => AwsError {
            code: None,
            message: format!(
                "unreadable response from AWS: {}",
                aws_smithy_types::error::display::DisplayErrorContext(e)
            ),
            status: Some(r.raw().status_code()),
            no_response: false,
        },
        other => AwsError {
            code: None,
            message: aws_smithy_types::error::display::DisplayErrorContext(other).to_string(),
            status: None,
            no_response: false,
        },
    }
}

/// The HTTP status of a raw response.
pub trait HasStatus {
    fn status_code(&self) -> u16;
}

impl HasStatus for aws_smithy_runtime_api::http::Response {
    fn status_code(&self) -> u16 {
        self.status().as_u16()
    }
}

/// `.aws()?` on an SDK result: our error type, for `retry_on` / `create_once`.
pub trait AwsResultExt<T> {
    fn aws(self) -> Result<T, AwsError>;
}

impl<T, E, R> AwsResultExt<T> for Result<T, SdkError<E, R>>
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug + HasStatus,
{
    fn aws(self) -> Result<T, AwsError> {
        self.map_err(|e| describe(&e))
    }
}

/// NotFound as an answer, not a failure: `None` for a read of something
/// gone, success for a delete of it.
pub trait Absent<T> {
    fn or_absent(self) -> Result<Option<T>, AwsError>;
}

impl<T> Absent<T> for Result<T, AwsError> {
    fn or_absent(self) -> Result<Option<T>, AwsError> {
        match self {
            Ok(v) => Ok(Some(v)),
            Err(e) if e.not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }
}
