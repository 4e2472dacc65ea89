//! Which rows a virtualized list renders: only those in view, plus a margin, so 50,000
//! messages cost as much as a screenful.

/// The rows to render and the space to leave above them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// First row to render.
    pub first: usize,
    /// One past the last row to render.
    pub end: usize,
    /// Pixels above the first rendered row (the rows not rendered).
    pub offset_px: u32,
    /// Height of the whole list in pixels, for the scrollbar.
    pub total_px: u32,
}

/// Rows rendered beyond each edge of the view, so fast scrolling shows no gaps.
pub const OVERSCAN: usize = 10;

/// The window for `rows` rows of `row_px` pixels, scrolled to `scroll_px`, in a view of
/// `view_px` pixels.
pub fn window(rows: usize, row_px: u32, scroll_px: u32, view_px: u32) -> Window {
    let row_px = row_px.max(1);
    let total_px = u32::try_from(rows)
        .unwrap_or(u32::MAX)
        .saturating_mul(row_px);
    let top_row = (scroll_px / row_px) as usize;
    let visible = (view_px / row_px) as usize + 2;
    let first = top_row.saturating_sub(OVERSCAN).min(rows);
    let end = top_row
        .saturating_add(visible)
        .saturating_add(OVERSCAN)
        .min(rows);
    Window {
        first,
        end,
        offset_px: u32::try_from(first)
            .unwrap_or(u32::MAX)
            .saturating_mul(row_px),
        total_px,
    }
}

/// Where to scroll so that row `row` (of `row_px` pixels) is in a view of `view_px` pixels
/// scrolled to `scroll_px`: the least scrolling that shows it whole, or `None` if it shows
/// already.
pub fn scroll_into_view(row: usize, row_px: u32, scroll_px: u32, view_px: u32) -> Option<u32> {
    let top = u32::try_from(row)
        .unwrap_or(u32::MAX)
        .saturating_mul(row_px);
    let bottom = top.saturating_add(row_px);
    if top < scroll_px {
        Some(top)
    } else if bottom > scroll_px.saturating_add(view_px) {
        Some(bottom - view_px)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn j_and_k_scroll_just_enough_to_show_the_selected_row() {
        // Rows of 56 px in a view of 560 px (ten rows), scrolled to the top.
        assert_eq!(scroll_into_view(0, 56, 0, 560), None);
        assert_eq!(scroll_into_view(9, 56, 0, 560), None);
        // The eleventh row: scroll down by one row.
        assert_eq!(scroll_into_view(10, 56, 0, 560), Some(56));
        // Above the view: its top at the view's top.
        assert_eq!(scroll_into_view(3, 56, 560, 560), Some(168));
    }

    #[test]
    fn only_the_rows_in_view_and_a_margin_are_rendered() {
        let w = window(50_000, 40, 400_000, 800);
        assert_eq!(w.first, 10_000 - OVERSCAN);
        assert_eq!(w.end, 10_000 + 22 + OVERSCAN);
        assert_eq!(w.offset_px, (10_000 - OVERSCAN as u32) * 40);
        assert_eq!(w.total_px, 2_000_000);
        assert!(w.end - w.first < 50);
    }

    #[test]
    fn edges_and_empty_lists() {
        assert_eq!(
            window(0, 40, 0, 800),
            Window {
                first: 0,
                end: 0,
                offset_px: 0,
                total_px: 0
            }
        );
        let top = window(5, 40, 0, 800);
        assert_eq!((top.first, top.end), (0, 5));
        // Scrolled past the end (the list shrank): nothing out of range.
        let past = window(5, 40, 10_000, 800);
        assert!(past.first <= past.end && past.end <= 5);
        // A zero row height does not divide by zero.
        let _ = window(5, 0, 10, 10);
    }
}
