//! Plain-text tables with aligned columns.

/// A table: a header row and data rows, printed with columns padded to the
/// widest cell. The last column is not padded (no trailing blanks).
pub struct Table {
    rows: Vec<Vec<String>>,
    right: Vec<bool>,
}

impl Table {
    /// `columns`: header names; a leading `>` right-aligns the column.
    pub fn new(columns: &[&str]) -> Table {
        Table {
            right: columns.iter().map(|c| c.starts_with('>')).collect(),
            rows: vec![columns
                .iter()
                .map(|c| c.trim_start_matches('>').to_string())
                .collect()],
        }
    }

    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    pub fn render(&self, indent: &str) -> String {
        let n = self.right.len();
        let mut width = vec![0; n];
        for r in &self.rows {
            for (i, c) in r.iter().enumerate().take(n) {
                width[i] = width[i].max(c.chars().count());
            }
        }
        let mut out = String::new();
        for r in &self.rows {
            let mut line = String::from(indent);
            for (i, c) in r.iter().enumerate().take(n) {
                if i > 0 {
                    line.push_str("  ");
                }
                let pad = width[i] - c.chars().count();
                if self.right[i] {
                    line.extend(std::iter::repeat_n(' ', pad));
                    line.push_str(c);
                } else {
                    line.push_str(c);
                    if i + 1 < n {
                        line.extend(std::iter::repeat_n(' ', pad));
                    }
                }
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_align() {
        let mut t = Table::new(&["Name", ">Size", "Note"]);
        t.row(vec!["a".into(), "1".into(), "x".into()]);
        t.row(vec!["long".into(), "100".into(), "".into()]);
        assert_eq!(
            t.render(""),
            "Name  Size  Note\na        1  x\nlong   100\n"
        );
    }
}
