//! Field-level validation errors, in the order the fields were checked.

use serde::ser::{Serialize, SerializeMap, Serializer};

/// The key DRF uses for errors that belong to no single field.
pub const NON_FIELD_ERRORS: &str = "non_field_errors";

/// Validation messages per field, kept in insertion order so that responses list fields in the
/// order a serializer declares them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldErrors {
    fields: Vec<(String, Vec<String>)>,
}

impl FieldErrors {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds one message to a field's list.
    pub fn add(&mut self, field: &str, message: impl Into<String>) {
        let message = message.into();
        match self.fields.iter_mut().find(|(name, _)| name == field) {
            Some((_, messages)) => messages.push(message),
            None => self.fields.push((field.to_owned(), vec![message])),
        }
    }

    /// Records the error of a field validator, passing its value through.
    pub fn check<T>(&mut self, field: &str, result: Result<T, String>) -> Option<T> {
        match result {
            Ok(value) => Some(value),
            Err(message) => {
                self.add(field, message);
                None
            }
        }
    }

    pub fn has(&self, field: &str) -> bool {
        self.fields.iter().any(|(name, _)| name == field)
    }

    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }

    pub fn merge(&mut self, other: FieldErrors) {
        for (field, messages) in other.fields {
            for message in messages {
                self.add(&field, message);
            }
        }
    }

    pub fn single(field: &str, message: impl Into<String>) -> Self {
        let mut errors = Self::new();
        errors.add(field, message);
        errors
    }

    /// `Ok(())` when nothing failed, otherwise the errors themselves.
    pub fn into_result(self) -> Result<(), FieldErrors> {
        if self.is_empty() {
            Ok(())
        } else {
            Err(self)
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &[String])> {
        self.fields
            .iter()
            .map(|(field, messages)| (field.as_str(), messages.as_slice()))
    }
}

impl Serialize for FieldErrors {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.fields.len()))?;
        for (field, messages) in &self.fields {
            map.serialize_entry(field, messages)?;
        }
        map.end()
    }
}

impl std::fmt::Display for FieldErrors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut first = true;
        for (field, messages) in &self.fields {
            for message in messages {
                if !first {
                    f.write_str("; ")?;
                }
                first = false;
                write!(f, "{field}: {message}")?;
            }
        }
        Ok(())
    }
}

impl std::error::Error for FieldErrors {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_insertion_order_and_groups_messages() {
        let mut errors = FieldErrors::new();
        errors.add("username", "a");
        errors.add("email", "b");
        errors.add("username", "c");
        assert_eq!(
            serde_json::to_string(&errors).unwrap(),
            r#"{"username":["a","c"],"email":["b"]}"#
        );
        assert!(errors.has("email"));
        assert!(!errors.has("groups"));
    }
}
