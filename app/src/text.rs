//! Small text helpers for messages shown to people: echoed input is cut, messages read as
//! sentences.

/// At most this many characters of user input are echoed back in a message.
pub const ECHO_LIMIT: usize = 80;
/// Longest message returned to a client.
const MESSAGE_LIMIT: usize = 400;

/// `input` cut to [`ECHO_LIMIT`] characters, with an ellipsis when something was cut.
pub fn clip(input: &str) -> String {
    clip_to(input, ECHO_LIMIT)
}

fn clip_to(input: &str, limit: usize) -> String {
    match input.char_indices().nth(limit) {
        Some((end, _)) => format!("{}…", &input[..end]),
        None => input.to_owned(),
    }
}

/// A message safe to return whatever input it echoes: every run of more than
/// [`ECHO_LIMIT`] characters without a space is cut, and so is the whole message.
pub fn bounded_message(message: &str) -> String {
    if message.chars().count() <= ECHO_LIMIT {
        return message.to_owned();
    }
    let mut out = String::with_capacity(message.len().min(MESSAGE_LIMIT * 4));
    let mut run = 0usize;
    let mut cut = false;
    for c in message.chars() {
        if c == ' ' {
            run = 0;
            cut = false;
        } else {
            run += 1;
        }
        if run > ECHO_LIMIT {
            if !cut {
                out.push('…');
                cut = true;
            }
            continue;
        }
        out.push(c);
    }
    clip_to(&out, MESSAGE_LIMIT)
}

/// `message` as a sentence: first letter upper-case, ending with a full stop (unless it ends
/// with other punctuation already).
pub fn sentence(message: &str) -> String {
    let message = message.trim();
    let mut chars = message.chars();
    let mut out = match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect::<String>(),
        None => return String::new(),
    };
    if !out.ends_with(['.', '!', '?', '…', ':']) {
        out.push('.');
    }
    out
}

/// A wait in words: "15 minutes", "1 minute", "40 seconds" (rounded up to minutes above one).
pub fn duration_words(secs: u64) -> String {
    let plural = |n: u64, unit: &str| format!("{n} {unit}{}", if n == 1 { "" } else { "s" });
    if secs < 60 {
        plural(secs.max(1), "second")
    } else if secs < 3600 {
        plural(secs.div_ceil(60), "minute")
    } else {
        plural(secs.div_ceil(3600), "hour")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clips_long_input() {
        assert_eq!(clip("short"), "short");
        let long = "x".repeat(10_000);
        let clipped = clip(&long);
        assert_eq!(clipped.chars().count(), ECHO_LIMIT + 1);
        assert!(clipped.ends_with('…'));
        assert_eq!(clip(&"é".repeat(81)).chars().count(), 81);
    }

    #[test]
    fn bounds_messages() {
        let m = format!("name {:?} is invalid", "y".repeat(10_000));
        let b = bounded_message(&m);
        assert!(b.chars().count() < 120, "{b}");
        assert!(b.starts_with("name \"yyy") && b.ends_with(" is invalid"));
        let spaced = "a ".repeat(5_000);
        assert!(bounded_message(&spaced).chars().count() <= MESSAGE_LIMIT + 1);
    }

    #[test]
    fn durations_in_words() {
        assert_eq!(duration_words(900), "15 minutes");
        assert_eq!(duration_words(61), "2 minutes");
        assert_eq!(duration_words(60), "1 minute");
        assert_eq!(duration_words(1), "1 second");
        assert_eq!(duration_words(7200), "2 hours");
    }

    #[test]
    fn sentences() {
        assert_eq!(sentence("user saved"), "User saved.");
        assert_eq!(sentence("Done!"), "Done!");
        assert_eq!(sentence(""), "");
    }
}
