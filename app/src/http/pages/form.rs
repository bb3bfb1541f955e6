//! Urlencoded form bodies as name/value pairs. Unlike `Form<T>` this keeps repeated names,
//! which is how checkbox groups arrive.

use axum::extract::{FromRequest, RawForm, Request};

use super::errors::HtmlError;
use crate::auth::csrf;
use crate::http::error::AppError;

#[derive(Debug, Clone, Default)]
pub struct FormFields(Vec<(String, String)>);

impl<S: Send + Sync> FromRequest<S> for FormFields {
    type Rejection = HtmlError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let RawForm(bytes) = RawForm::from_request(req, state).await?;
        Ok(FormFields::parse(&bytes))
    }
}

impl FormFields {
    /// Parses a body; the CSRF field is dropped (the middleware has checked it).
    pub fn parse(body: &[u8]) -> Self {
        FormFields(
            form_urlencoded::parse(body)
                .filter(|(k, _)| k != csrf::FORM_FIELD)
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        )
    }

    /// The first value of `name`, or `""` when absent.
    pub fn get(&self, name: &str) -> &str {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map_or("", |(_, v)| v.as_str())
    }

    /// Every non-empty value of `name`, in order, without duplicates.
    pub fn all(&self, name: &str) -> Vec<String> {
        let mut values: Vec<String> = Vec::new();
        for (_, v) in self.0.iter().filter(|(k, _)| k == name) {
            if !v.is_empty() && !values.contains(v) {
                values.push(v.clone());
            }
        }
        values
    }

    /// Whether a checkbox `name` was ticked.
    pub fn checked(&self, name: &str) -> bool {
        self.0.iter().any(|(k, _)| k == name)
    }

    /// An optional id from a select: empty means none.
    pub fn optional_id(&self, name: &str, what: &str) -> Result<Option<i64>, AppError> {
        let raw = self.get(name).trim();
        if raw.is_empty() {
            return Ok(None);
        }
        raw.parse()
            .map(Some)
            .map_err(|_| AppError::BadRequest(format!("{what} must be an id")))
    }

    pub fn required_id(&self, name: &str, what: &str) -> Result<i64, AppError> {
        self.optional_id(name, what)?
            .ok_or_else(|| AppError::Validation(format!("choose a {what}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_repeated_names_and_drops_the_csrf_field() {
        let form =
            FormFields::parse(b"_csrf=t&roles=a&roles=b&roles=a&roles=&name=x+y&active=on&parent=");
        assert_eq!(form.all("roles"), ["a", "b"]);
        assert_eq!(form.get("name"), "x y");
        assert_eq!(form.get("_csrf"), "");
        assert!(form.checked("active") && !form.checked("missing"));
        assert_eq!(form.optional_id("parent", "parent").unwrap(), None);
        assert!(form.required_id("parent", "parent").is_err());
        assert!(FormFields::parse(b"id=x").optional_id("id", "id").is_err());
    }
}
