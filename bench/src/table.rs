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

/// Prints five-column `rows` under `header`, padding each column to its widest cell.
pub fn print5(header: &[&str; 5], rows: &[(String, String, String, String, String)]) {
    let cells = |r: &(String, String, String, String, String)| {
        [
            r.0.clone(),
            r.1.clone(),
            r.2.clone(),
            r.3.clone(),
            r.4.clone(),
        ]
    };
    let mut widths = header.map(|h| h.chars().count());
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(cells(row)) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let line = |cells: [&str; 5]| {
        let mut out = String::from("|");
        for (i, cell) in cells.iter().enumerate() {
            let pad = widths[i] - cell.chars().count();
            if i == 0 || i == 4 {
                out.push_str(&format!(" {cell}{} |", " ".repeat(pad)));
            } else {
                out.push_str(&format!(" {}{cell} |", " ".repeat(pad)));
            }
        }
        println!("{out}");
    };
    println!();
    line(*header);
    let rule: Vec<String> = widths
        .iter()
        .enumerate()
        .map(|(i, w)| {
            if i == 0 || i == 4 {
                "-".repeat(w + 2)
            } else {
                "-".repeat(w + 1) + ":"
            }
        })
        .collect();
    println!("|{}|", rule.join("|"));
    for row in rows {
        let c = cells(row);
        line([&c[0], &c[1], &c[2], &c[3], &c[4]]);
    }
}
