//! The YAML path of a line, read from the text alone (for syntax errors, where there is no
//! parsed document to ask).

/// One step of a YAML path.
enum Step<'a> {
    /// A mapping key at this column; `open` when its value is on the lines below.
    Key {
        column: usize,
        name: &'a str,
        open: bool,
    },
    /// An item of a block sequence whose dashes are at this column.
    Item { column: usize, index: usize },
}

impl Step<'_> {
    fn column(&self) -> usize {
        match self {
            Step::Key { column, .. } | Step::Item { column, .. } => *column,
        }
    }
}

/// The path (`rooms[2].services[0].ports`) of the block-style node that line `line`
/// (1-based) of `src` belongs to, read from indentation, dashes and `key:` alone: the
/// document may be broken at that line, so nothing is parsed. Lines inside block scalars
/// and multi-line flow collections are passed over; the path stops at a flow collection.
pub fn path_at(src: &str, line: usize) -> String {
    let mut steps: Vec<Step<'_>> = Vec::new();
    // Lines deeper than this column belong to a block scalar; lines while `flow > 0`, to a
    // flow collection opened above.
    let mut scalar_above: Option<usize> = None;
    let mut flow = 0usize;
    for text in src.lines().take(line) {
        let body = text.trim_start_matches(' ');
        let mut column = text.len() - body.len();
        if flow > 0 {
            let (open, closed) = depth_change(body);
            flow = flow.saturating_add(open).saturating_sub(closed);
            continue;
        }
        if body.is_empty() || body.starts_with('#') || body.starts_with("---") {
            continue;
        }
        match scalar_above {
            Some(c) if column > c => continue,
            _ => scalar_above = None,
        }
        let mut rest = body;
        while rest == "-" || rest.starts_with("- ") {
            while steps.last().is_some_and(|s| match s {
                Step::Key {
                    column: c, open, ..
                } => *c > column || (*c == column && !open),
                Step::Item { column: c, .. } => *c > column,
            }) {
                steps.pop();
            }
            match steps.last_mut() {
                Some(Step::Item { column: c, index }) if *c == column => *index += 1,
                _ => steps.push(Step::Item { column, index: 0 }),
            }
            let after = rest[1..].trim_start_matches(' ');
            column += rest.len() - after.len();
            rest = after;
        }
        let Some((name, value)) = key(rest) else {
            flow = still_open(rest);
            if rest.starts_with('|') || rest.starts_with('>') {
                scalar_above = Some(column.saturating_sub(1));
            }
            continue;
        };
        while steps.last().is_some_and(|s| s.column() >= column) {
            steps.pop();
        }
        steps.push(Step::Key {
            column,
            name,
            open: value.is_empty() || value.starts_with('#'),
        });
        if value.starts_with('|') || value.starts_with('>') {
            scalar_above = Some(column);
        }
        flow = still_open(value);
    }
    let mut path = String::new();
    for step in &steps {
        match step {
            Step::Key { name, .. } => {
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(name);
            }
            Step::Item { index, .. } => path.push_str(&format!("[{index}]")),
        }
    }
    path
}

/// `key: value` (or `key:`) at the start of `rest`: the key without quotes and the value.
fn key(rest: &str) -> Option<(&str, &str)> {
    let (name, after) = match rest.as_bytes().first()? {
        q @ (b'"' | b'\'') => {
            let end = rest[1..].find(*q as char)? + 1;
            (&rest[1..end], &rest[end + 1..])
        }
        b'[' | b'{' | b'#' | b'&' | b'*' | b'!' | b'|' | b'>' => return None,
        _ => {
            let at = rest
                .match_indices(':')
                .map(|(i, _)| i)
                .find(|&i| matches!(rest.as_bytes().get(i + 1), None | Some(b' ' | b'\t')))?;
            (rest[..at].trim_end(), &rest[at..])
        }
    };
    let value = after.strip_prefix(':')?;
    if !(value.is_empty() || value.starts_with([' ', '\t'])) {
        return None;
    }
    Some((name, value.trim()))
}

/// Flow brackets a value that starts a node leaves open (outside quotes).
fn still_open(value: &str) -> usize {
    let (open, closed) = depth_change(value);
    open.saturating_sub(closed)
}

/// (brackets left open, brackets closed that were opened before) over one line.
fn depth_change(value: &str) -> (usize, usize) {
    let (mut open, mut closed_before) = (0usize, 0usize);
    let mut quote: Option<char> = None;
    for c in value.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '"' | '\'') => quote = Some(c),
            (None, '#') => break,
            (None, '[' | '{') => open += 1,
            (None, ']' | '}') if open > 0 => open -= 1,
            (None, ']' | '}') => closed_before += 1,
            _ => {}
        }
    }
    (open, closed_before)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_path_of_a_line_follows_indentation_dashes_and_keys() {
        let doc = "\
version: v1
listen:
  http: 127.0.0.1:0
rooms:
  - name: a
  - name: b
    services: []
  - name: c
    services:
      - name: web
        description: |
          text: [not a key
        ports:
        - num: 80
        - {num: 81,
           published: true}
        - num: 82 # [
routes:
- domain: x
";
        let at = |line| path_at(doc, line);
        assert_eq!(at(1), "version");
        assert_eq!(at(3), "listen.http");
        assert_eq!(at(5), "rooms[0].name");
        assert_eq!(at(7), "rooms[1].services");
        assert_eq!(at(10), "rooms[2].services[0].name");
        assert_eq!(at(12), "rooms[2].services[0].description");
        assert_eq!(at(13), "rooms[2].services[0].ports");
        assert_eq!(at(14), "rooms[2].services[0].ports[0].num");
        assert_eq!(at(16), "rooms[2].services[0].ports[1]");
        assert_eq!(at(17), "rooms[2].services[0].ports[2].num");
        assert_eq!(at(19), "routes[0].domain");
        assert_eq!(at(40), "routes[0].domain");
    }
}
