//! Resource tags (key/value pairs) on trackers: the body of
//! BatchCreateResourceTags/BatchDeleteResourceTags and the rules tags follow.

use crate::error::ResourceError;
use serde::{Deserialize, Serialize};

/// The resource type of trackers in the tag API paths.
pub const TRACKER_RESOURCE_TYPE: &str = "cts-tracker";
/// The most tags a tracker may carry.
pub const MAX_TAGS: usize = 20;
/// The longest key, in characters.
pub const MAX_KEY_CHARS: usize = 128;
/// The longest value, in characters.
pub const MAX_VALUE_CHARS: usize = 255;

/// A tag as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tag {
    pub key: String,
    pub value: String,
}

/// The body of both tag calls: `{"tags":[{"key":..,"value":..}]}`. A
/// missing value creates an empty one, and deletes by key alone.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TagsRequest {
    pub tags: Vec<TagRequest>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TagRequest {
    pub key: String,
    pub value: Option<String>,
}

impl TagsRequest {
    /// The tags to add or replace, validated; a key may appear once.
    pub(crate) fn to_create(&self) -> Result<Vec<Tag>, ResourceError> {
        self.check_count()?;
        let mut tags: Vec<Tag> = Vec::with_capacity(self.tags.len());
        for tag in &self.tags {
            check_text("tags.key", &tag.key, 1, MAX_KEY_CHARS)?;
            let value = tag.value.clone().unwrap_or_default();
            check_text("tags.value", &value, 0, MAX_VALUE_CHARS)?;
            if tags.iter().any(|seen| seen.key == tag.key) {
                return Err(ResourceError::invalid("tags.key", format!("{:?} is given twice", tag.key)));
            }
            tags.push(Tag { key: tag.key.clone(), value });
        }
        Ok(tags)
    }

    /// Whether `tag` is one this delete request names: by key and value, or by
    /// key alone when no value (or an empty one) is given.
    pub(crate) fn deletes(&self, tag: &Tag) -> bool {
        self.tags.iter().any(|request| {
            request.key == tag.key
                && request.value.as_deref().is_none_or(|value| value.is_empty() || value == tag.value)
        })
    }

    pub(crate) fn check_count(&self) -> Result<(), ResourceError> {
        if self.tags.is_empty() || self.tags.len() > MAX_TAGS {
            return Err(ResourceError::invalid("tags", format!("must hold 1 to {MAX_TAGS} tags")));
        }
        Ok(())
    }
}

/// `min..=max` characters, none of them ASCII control characters or `=*<>\,|/`.
fn check_text(field: &'static str, text: &str, min: usize, max: usize) -> Result<(), ResourceError> {
    let chars = text.chars().count();
    if !(min..=max).contains(&chars) {
        return Err(ResourceError::invalid(field, format!("must be {min}-{max} characters")));
    }
    if let Some(bad) = text.chars().find(|c| c.is_ascii_control() || "=*<>\\,|/".contains(*c)) {
        return Err(ResourceError::invalid(field, format!("must not contain {bad:?}")));
    }
    Ok(())
}

/// Adds `new` to `tags`, a tag with the same key replacing the old one's value.
pub(crate) fn merge(tags: &mut Vec<Tag>, new: Vec<Tag>) -> Result<(), ResourceError> {
    for tag in new {
        match tags.iter_mut().find(|existing| existing.key == tag.key) {
            Some(existing) => existing.value = tag.value,
            None => tags.push(tag),
        }
    }
    if tags.len() > MAX_TAGS {
        return Err(ResourceError::invalid("tags", format!("a tracker carries at most {MAX_TAGS} tags")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(tags: &[(&str, Option<&str>)]) -> TagsRequest {
        TagsRequest {
            tags: tags
                .iter()
                .map(|(key, value)| TagRequest { key: key.to_string(), value: value.map(str::to_owned) })
                .collect(),
        }
    }

    #[test]
    fn tag_keys_and_values_are_checked() {
        let long_key = "k".repeat(MAX_KEY_CHARS + 1);
        let longest_key = "é".repeat(MAX_KEY_CHARS);
        let long_value = "v".repeat(MAX_VALUE_CHARS + 1);
        type Case<'a> = (Vec<(&'a str, Option<&'a str>)>, bool);
        let cases: Vec<Case> = vec![
            (vec![("env", Some("prod"))], true),
            (vec![("env", None)], true),
            (vec![("env", Some(""))], true),
            (vec![(&longest_key, Some("x"))], true),
            (vec![("", Some("x"))], false),
            (vec![(&long_key, Some("x"))], false),
            (vec![("env", Some(&long_value))], false),
            (vec![("a=b", Some("x"))], false),
            (vec![("env", Some("a/b"))], false),
            (vec![("env\t", Some("x"))], false),
            (vec![("env", Some("x")), ("env", Some("y"))], false),
            (vec![], false),
            ((0..=MAX_TAGS).map(|_| ("k", None)).collect(), false),
        ];
        for (tags, valid) in cases {
            assert_eq!(request(&tags).to_create().is_ok(), valid, "{tags:?}");
        }
    }

    #[test]
    fn delete_matches_by_key_and_value_or_by_key_alone() {
        let tag = Tag { key: "env".into(), value: "prod".into() };
        assert!(request(&[("env", None)]).deletes(&tag));
        assert!(request(&[("env", Some(""))]).deletes(&tag));
        assert!(request(&[("env", Some("prod"))]).deletes(&tag));
        assert!(!request(&[("env", Some("dev"))]).deletes(&tag));
        assert!(!request(&[("team", None)]).deletes(&tag));
    }

    #[test]
    fn merge_replaces_values_and_caps_the_count() {
        let mut tags = vec![Tag { key: "env".into(), value: "dev".into() }];
        merge(&mut tags, vec![Tag { key: "env".into(), value: "prod".into() }]).unwrap();
        assert_eq!(tags, [Tag { key: "env".into(), value: "prod".into() }]);
        let many = (0..MAX_TAGS).map(|i| Tag { key: format!("k{i}"), value: String::new() }).collect();
        assert!(merge(&mut tags, many).is_err());
    }
}
