//! Docker's list output: a `--format` template per row, and for `table …`
//! formats a header row and columns aligned like Go's tabwriter with Docker's
//! settings (minwidth 10, padding 3, spaces).

use super::template::{MethodHook, Template, TemplateError};
use serde_json::Value;

/// Go's `text/tabwriter` with flags 0: cells end at `\t`, the text after a
/// line's last tab is not aligned, columns are laid out per block of
/// consecutive lines that have that column.
pub struct TabWriter {
    minwidth: usize,
    padding: usize,
    lines: Vec<Vec<String>>,
}

impl TabWriter {
    pub fn docker() -> TabWriter {
        TabWriter::new(10, 3)
    }

    pub fn new(minwidth: usize, padding: usize) -> TabWriter {
        TabWriter {
            minwidth,
            padding,
            lines: Vec::new(),
        }
    }

    /// Adds text; it may contain several lines.
    pub fn write(&mut self, text: &str) {
        let mut text = text;
        if let Some(t) = text.strip_suffix('\n') {
            text = t;
        }
        for line in text.split('\n') {
            self.lines
                .push(line.split('\t').map(str::to_string).collect());
        }
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        let mut widths = Vec::new();
        self.format(&mut out, &mut widths, 0, self.lines.len());
        out
    }

    fn format(&self, out: &mut String, widths: &mut Vec<usize>, mut line0: usize, line1: usize) {
        let column = widths.len();
        let mut this = line0;
        while this < line1 {
            if column + 1 >= self.lines[this].len() {
                this += 1;
                continue;
            }
            self.write_lines(out, widths, line0, this);
            line0 = this;
            let mut width = self.minwidth;
            while this < line1 {
                let line = &self.lines[this];
                if column + 1 >= line.len() {
                    break;
                }
                let w = line[column].chars().count() + self.padding;
                width = width.max(w);
                this += 1;
            }
            widths.push(width);
            self.format(out, widths, line0, this);
            widths.pop();
            line0 = this;
        }
        self.write_lines(out, widths, line0, line1);
    }

    fn write_lines(&self, out: &mut String, widths: &[usize], line0: usize, line1: usize) {
        for line in &self.lines[line0..line1] {
            for (j, cell) in line.iter().enumerate() {
                out.push_str(cell);
                if j < widths.len() && j + 1 < line.len() {
                    let w = cell.chars().count();
                    out.extend(std::iter::repeat_n(' ', widths[j].saturating_sub(w)));
                }
            }
            out.push('\n');
        }
    }
}

/// A `--format` value prepared like Docker's formatter: `table` prefix
/// stripped, surrounding spaces trimmed, `\t` and `\n` escapes turned into
/// real tabs and newlines; `json` means `{{json .}}`.
pub struct Format {
    pub table: bool,
    template: Template,
}

impl Format {
    pub fn parse(format: &str) -> Result<Format, TemplateError> {
        let mut f = format;
        let table = f.starts_with("table");
        if table {
            f = &f["table".len()..];
        }
        let f = f.trim_matches(' ');
        let f = if f == "json" {
            "{{json .}}".to_string()
        } else {
            f.replace("\\t", "\t").replace("\\n", "\n")
        };
        Ok(Format {
            table,
            template: Template::parse(&f)?,
        })
    }

    /// Runs the template once over `sample` (a row with every field), so a
    /// field no row has fails even when there are no rows, as Docker's `ps`
    /// does.
    pub fn check(&self, sample: &Value, hook: MethodHook<'_>) -> Result<(), TemplateError> {
        self.template.render_row(sample, hook).map(drop)
    }

    /// Renders rows (and a header row for table formats) to one string.
    /// `header` maps field names to column titles (e.g. `ID` -> `CONTAINER ID`).
    pub fn render(
        &self,
        header: &Value,
        rows: &[Value],
        hook: MethodHook<'_>,
    ) -> Result<String, TemplateError> {
        let mut body = String::new();
        if self.table {
            let header_hook = |dot: &Value, name: &str, _args: &[Value]| -> Option<Value> {
                dot.get(name)
                    .cloned()
                    .or_else(|| Some(Value::String(name.to_uppercase())))
            };
            let mut h = self.template.render_with(header, &header_hook)?;
            h.push('\n');
            body.push_str(&h);
        }
        for row in rows {
            body.push_str(&self.template.render_row(row, hook)?);
            body.push('\n');
        }
        if self.table {
            let mut tw = TabWriter::docker();
            tw.write(&body);
            Ok(tw.render())
        } else {
            Ok(body)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn tabwriter_matches_docker_ps_header() {
        let mut tw = TabWriter::docker();
        tw.write("CONTAINER ID\tIMAGE\tCOMMAND\tCREATED\tSTATUS\tPORTS\tNAMES\n");
        assert_eq!(
            tw.render(),
            "CONTAINER ID   IMAGE     COMMAND   CREATED   STATUS    PORTS     NAMES\n"
        );
    }

    #[test]
    fn tabwriter_aligns_rows() {
        let mut tw = TabWriter::docker();
        tw.write("REPOSITORY\tTAG\tIMAGE ID\n");
        tw.write("busybox\tlatest\t0123456789ab\n");
        tw.write("a-much-longer-name\t1\tba9876543210\n");
        assert_eq!(
            tw.render(),
            "REPOSITORY           TAG       IMAGE ID\n\
             busybox              latest    0123456789ab\n\
             a-much-longer-name   1         ba9876543210\n"
        );
    }

    #[test]
    fn tabwriter_lines_without_tabs_split_blocks() {
        let mut tw = TabWriter::docker();
        tw.write("a\tb\nplain\nlonger-cell\tc\n");
        assert_eq!(tw.render(), "a         b\nplain\nlonger-cell   c\n");
    }

    #[test]
    fn table_format_renders_header_and_rows() {
        let f = Format::parse("table {{.ID}}\\t{{.Names}}").unwrap();
        let header = json!({"ID": "CONTAINER ID", "Names": "NAMES"});
        let rows = vec![json!({"ID": "abc", "Names": "web"})];
        let out = f.render(&header, &rows, &|_, _, _| None).unwrap();
        assert_eq!(out, "CONTAINER ID   NAMES\nabc            web\n");
    }

    #[test]
    fn plain_and_json_formats() {
        let rows = vec![json!({"ID": "abc", "B": 1})];
        let f = Format::parse("{{.ID}}").unwrap();
        assert_eq!(
            f.render(&json!({}), &rows, &|_, _, _| None).unwrap(),
            "abc\n"
        );
        let f = Format::parse("json").unwrap();
        assert_eq!(
            f.render(&json!({}), &rows, &|_, _, _| None).unwrap(),
            "{\"ID\":\"abc\",\"B\":1}\n"
        );
    }
}
