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

/// Prints `rows` (each as many cells as `header`) under `header`, padding each column to its
/// widest cell.
pub fn print_rows(header: &[&str], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let line = |cells: &mut dyn Iterator<Item = &str>| {
        let mut out = String::from("|");
        for (cell, width) in cells.zip(&widths) {
            let pad = width - cell.chars().count();
            out.push_str(&format!(" {cell}{} |", " ".repeat(pad)));
        }
        println!("{out}");
    };
    println!();
    line(&mut header.iter().copied());
    let rule: Vec<String> = widths.iter().map(|w| "-".repeat(w + 2)).collect();
    println!("|{}|", rule.join("|"));
    for row in rows {
        line(&mut row.iter().map(String::as_str));
    }
}
