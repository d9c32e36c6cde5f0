//! Prints results as a Markdown table whose columns line up in a terminal.

/// Prints `rows` under `header`, padding each column to its widest cell.
pub fn print<A: AsRef<str>, B: AsRef<str>, C: AsRef<str>>(header: &[&str; 3], rows: &[(A, B, C)]) {
    let width = |column: usize, cell: &dyn Fn(&(A, B, C)) -> usize| {
        rows.iter()
            .map(cell)
            .max()
            .unwrap_or(0)
            .max(header[column].chars().count())
    };
    let widths = [
        width(0, &|r| r.0.as_ref().chars().count()),
        width(1, &|r| r.1.as_ref().chars().count()),
        width(2, &|r| r.2.as_ref().chars().count()),
    ];
    let line = |cells: [&str; 3]| {
        println!(
            "| {:<w0$} | {:>w1$} | {:<w2$} |",
            cells[0],
            cells[1],
            cells[2],
            w0 = widths[0],
            w1 = widths[1],
            w2 = widths[2]
        );
    };
    println!();
    line(*header);
    println!(
        "|{}|{}|{}|",
        "-".repeat(widths[0] + 2),
        "-".repeat(widths[1] + 1) + ":",
        "-".repeat(widths[2] + 2)
    );
    for row in rows {
        line([row.0.as_ref(), row.1.as_ref(), row.2.as_ref()]);
    }
}
