//! `page_size` / `page_token` handling shared by every list call.
//!
//! Lists are ordered by UUIDv7 ids (creation order); a page token is the last id of the
//! previous page, so pages stay stable while rows are added.

use uuid::Uuid;

use crate::edge::ApiError;

/// Page size when the client sends 0.
pub const DEFAULT_PAGE_SIZE: u32 = 50;
/// Largest page served; larger requests are clamped.
pub const MAX_PAGE_SIZE: u32 = 1000;

/// A validated page request.
#[derive(Debug, Clone, Copy)]
pub struct PageRequest {
    /// Rows to return.
    pub size: u32,
    /// Return rows after this id.
    pub after: Option<Uuid>,
}

impl PageRequest {
    /// Validates the request fields.
    ///
    /// # Errors
    /// `InvalidArgument` for a negative size or a token this server did not issue.
    pub fn parse(page_size: i32, page_token: &str) -> Result<Self, ApiError> {
        let size = match u32::try_from(page_size) {
            Ok(0) => DEFAULT_PAGE_SIZE,
            Ok(size) => size.min(MAX_PAGE_SIZE),
            Err(_) => return Err(ApiError::invalid("page_size", "must not be negative")),
        };
        let after = if page_token.is_empty() {
            None
        } else {
            Some(Uuid::try_parse(page_token).map_err(|_| {
                ApiError::invalid("page_token", "not a token from a previous response")
            })?)
        };
        Ok(Self { size, after })
    }

    /// The next page token given the ids of the rows fetched (one more than `size` was
    /// asked for, to learn whether another page exists). Drops the extra row.
    pub fn finish<T>(&self, rows: Vec<T>, id: impl Fn(&T) -> Uuid) -> (Vec<T>, String) {
        split_page(rows, self.size, |row| id(row).to_string())
    }
}

/// Cuts rows fetched one beyond `size` down to a page; the next page token is
/// `token(last row of the page)` when there is another page, else empty.
pub fn split_page<T>(
    mut rows: Vec<T>,
    size: u32,
    token: impl Fn(&T) -> String,
) -> (Vec<T>, String) {
    if rows.len() > size as usize {
        rows.truncate(size as usize);
        let next = rows.last().map(token).unwrap_or_default();
        (rows, next)
    } else {
        (rows, String::new())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_tokens() {
        assert_eq!(PageRequest::parse(0, "").unwrap().size, DEFAULT_PAGE_SIZE);
        assert_eq!(PageRequest::parse(5000, "").unwrap().size, MAX_PAGE_SIZE);
        assert!(PageRequest::parse(-1, "").is_err());
        assert!(PageRequest::parse(10, "garbage").is_err());
        let page = PageRequest::parse(2, "").unwrap();
        let ids = [Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7()];
        let (rows, token) = page.finish(ids.to_vec(), |id| *id);
        assert_eq!(rows.len(), 2);
        assert_eq!(token, ids[1].to_string());
        let (rows, token) = page.finish(ids[..2].to_vec(), |id| *id);
        assert_eq!((rows.len(), token.as_str()), (2, ""));
    }
}
