//! The boolean expressions of multi-event conditions: names of events, `&&`, `||`, `!` and
//! parentheses (`breach && (degraded || crash)`); `!` binds tightest, then `&&`, then `||`.

/// A parsed expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expr {
    /// True when the named event was seen.
    Name(String),
    /// Negation.
    Not(Box<Expr>),
    /// Both.
    And(Box<Expr>, Box<Expr>),
    /// Either.
    Or(Box<Expr>, Box<Expr>),
}

impl Expr {
    /// Parses `text`; the error says where it stopped making sense.
    pub fn parse(text: &str) -> Result<Expr, String> {
        let tokens = tokenize(text)?;
        let mut parser = Parser { tokens, at: 0 };
        let expr = parser.or()?;
        match parser.tokens.get(parser.at) {
            None => Ok(expr),
            Some(t) => Err(format!("unexpected `{t}` at token {}", parser.at + 1)),
        }
    }

    /// Its value when exactly the names for which `seen` is true were seen.
    pub fn eval(&self, seen: &dyn Fn(&str) -> bool) -> bool {
        match self {
            Expr::Name(n) => seen(n),
            Expr::Not(e) => !e.eval(seen),
            Expr::And(a, b) => a.eval(seen) && b.eval(seen),
            Expr::Or(a, b) => a.eval(seen) || b.eval(seen),
        }
    }

    /// Every name it mentions.
    pub fn names(&self) -> Vec<&str> {
        match self {
            Expr::Name(n) => vec![n],
            Expr::Not(e) => e.names(),
            Expr::And(a, b) | Expr::Or(a, b) => {
                let mut v = a.names();
                v.extend(b.names());
                v
            }
        }
    }
}

fn tokenize(text: &str) -> Result<Vec<String>, String> {
    let mut tokens = Vec::new();
    let mut chars = text.chars().peekable();
    while let Some(&c) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
        } else if c == '(' || c == ')' || c == '!' {
            tokens.push(c.to_string());
            chars.next();
        } else if c == '&' || c == '|' {
            chars.next();
            if chars.next() != Some(c) {
                return Err(format!("`{c}` must be doubled (`{c}{c}`)"));
            }
            tokens.push(format!("{c}{c}"));
        } else if c.is_ascii_alphanumeric() || c == '_' {
            let mut name = String::new();
            while let Some(&c) = chars
                .peek()
                .filter(|c| c.is_ascii_alphanumeric() || **c == '_')
            {
                name.push(c);
                chars.next();
            }
            tokens.push(name);
        } else {
            return Err(format!("unexpected character `{c}`"));
        }
    }
    Ok(tokens)
}

struct Parser {
    tokens: Vec<String>,
    at: usize,
}

impl Parser {
    fn peek(&self) -> Option<&str> {
        self.tokens.get(self.at).map(String::as_str)
    }

    fn or(&mut self) -> Result<Expr, String> {
        let mut left = self.and()?;
        while self.peek() == Some("||") {
            self.at += 1;
            left = Expr::Or(Box::new(left), Box::new(self.and()?));
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Expr, String> {
        let mut left = self.unary()?;
        while self.peek() == Some("&&") {
            self.at += 1;
            left = Expr::And(Box::new(left), Box::new(self.unary()?));
        }
        Ok(left)
    }

    fn unary(&mut self) -> Result<Expr, String> {
        let token = self.peek().map(str::to_owned);
        self.at += 1;
        match token.as_deref() {
            Some("!") => Ok(Expr::Not(Box::new(self.unary()?))),
            Some("(") => {
                let inner = self.or()?;
                if self.peek() != Some(")") {
                    return Err("missing `)`".to_owned());
                }
                self.at += 1;
                Ok(inner)
            }
            Some(name) if name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') => {
                Ok(Expr::Name(name.to_owned()))
            }
            Some(other) => Err(format!("unexpected `{other}`")),
            None => Err("the expression ends too early".to_owned()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_an_expression_when_evaluated_then_precedence_and_parentheses_hold() {
        let e = Expr::parse("breach && (degraded || crash)").unwrap();
        assert!(!e.eval(&|n| n == "breach"));
        assert!(e.eval(&|n| n == "breach" || n == "crash"));
        assert!(!e.eval(&|n| n == "crash"));
        let e = Expr::parse("a || b && !c").unwrap();
        assert!(e.eval(&|n| n == "a"));
        assert!(e.eval(&|n| n == "b"));
        assert!(!e.eval(&|n| n == "b" || n == "c"));
        assert_eq!(e.names(), vec!["a", "b", "c"]);
    }

    #[test]
    fn given_bad_expressions_when_parsed_then_the_error_says_why() {
        assert!(Expr::parse("a & b").unwrap_err().contains("doubled"));
        assert!(Expr::parse("(a || b").unwrap_err().contains("missing `)`"));
        assert!(Expr::parse("a &&").unwrap_err().contains("ends too early"));
        assert!(Expr::parse("a b").unwrap_err().contains("unexpected `b`"));
    }
}
