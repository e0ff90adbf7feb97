//! Page-number pagination, 100 items a page, as DRF's `PageNumberPagination` does it.

/// Items on one page of every list.
pub const PAGE_SIZE: u64 = 100;
/// The one message every bad page number gets.
pub const INVALID_PAGE: &str = "Invalid page.";

/// The `page` a client asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PageRequest {
    Number(u64),
    Last,
}

/// A page that exists, located within the whole list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page {
    pub number: u64,
    pub offset: u64,
    pub limit: u64,
    pub has_next: bool,
    pub has_previous: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("Invalid page.")]
pub struct InvalidPage;

impl PageRequest {
    /// Parses the `page` query parameter; absent means the first page.
    pub fn parse(param: Option<&str>) -> Result<Self, InvalidPage> {
        match param {
            None => Ok(Self::Number(1)),
            Some("last") => Ok(Self::Last),
            Some(text) => match text.parse::<u64>() {
                Ok(n) if n >= 1 => Ok(Self::Number(n)),
                _ => Err(InvalidPage),
            },
        }
    }

    /// Locates the page in a list of `count` items. An empty list still has a first page.
    pub fn resolve(self, count: u64) -> Result<Page, InvalidPage> {
        let pages = count.div_ceil(PAGE_SIZE).max(1);
        let number = match self {
            Self::Number(n) if n <= pages => n,
            Self::Number(_) => return Err(InvalidPage),
            Self::Last => pages,
        };
        Ok(Page {
            number,
            offset: (number - 1) * PAGE_SIZE,
            limit: PAGE_SIZE,
            has_next: number < pages,
            has_previous: number > 1,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parsing() {
        assert_eq!(PageRequest::parse(None), Ok(PageRequest::Number(1)));
        assert_eq!(PageRequest::parse(Some("2")), Ok(PageRequest::Number(2)));
        assert_eq!(PageRequest::parse(Some("last")), Ok(PageRequest::Last));
        for bad in ["0", "-1", "abc", "1.0", "", " 1"] {
            assert_eq!(PageRequest::parse(Some(bad)), Err(InvalidPage), "{bad}");
        }
    }

    #[test]
    fn resolving() {
        let first = PageRequest::Number(1).resolve(0).unwrap();
        assert_eq!(
            (first.offset, first.has_next, first.has_previous),
            (0, false, false)
        );
        let last = PageRequest::Last.resolve(201).unwrap();
        assert_eq!(
            (last.number, last.offset, last.has_next, last.has_previous),
            (3, 200, false, true)
        );
        assert_eq!(PageRequest::Number(3).resolve(200), Err(InvalidPage));
        assert!(PageRequest::Number(2).resolve(101).unwrap().has_previous);
        assert_eq!(PageRequest::Number(2).resolve(100), Err(InvalidPage));
    }
}
