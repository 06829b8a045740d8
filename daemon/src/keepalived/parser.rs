//! From lines of tokens to a tree of statements. A statement is a keyword and its
//! arguments, to the end of the line or to a `{`, which opens its block; `}` closes
//! the innermost block. keepalived forgives unbalanced braces (a block left open
//! swallows whatever follows it); here they are errors naming the line.

use super::error::{ImportError, Loc};
use super::lexer::{Line, Tok};

/// One statement: `keyword args... [{ children }]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Node {
    pub keyword: String,
    pub args: Vec<String>,
    /// `Some` for a block (even an empty one).
    pub children: Option<Vec<Node>>,
    pub loc: Loc,
}

impl Node {
    /// `keyword arg1 arg2`, as messages quote a statement.
    pub fn head(&self) -> String {
        let mut s = self.keyword.clone();
        for a in &self.args {
            s.push(' ');
            s.push_str(a);
        }
        s
    }

    pub fn children(&self) -> &[Node] {
        self.children.as_deref().unwrap_or(&[])
    }
}

/// Deeper nesting is an error (keepalived's deepest block is 3 levels).
const MAX_DEPTH: usize = 32;

pub fn parse(lines: &[Line]) -> Result<Vec<Node>, ImportError> {
    // stack[0] is the top level; every other entry is an open block.
    let mut stack: Vec<Node> = vec![Node {
        keyword: String::new(),
        args: Vec::new(),
        children: Some(Vec::new()),
        loc: Loc {
            file: "".into(),
            line: 0,
        },
    }];
    for line in lines {
        let mut current: Option<Node> = None;
        for tok in &line.toks {
            match tok {
                Tok::Word(w) => match &mut current {
                    Some(node) => node.args.push(w.clone()),
                    None => {
                        current = Some(Node {
                            keyword: w.clone(),
                            args: Vec::new(),
                            children: None,
                            loc: line.loc.clone(),
                        })
                    }
                },
                Tok::Open => {
                    let node = match current.take() {
                        Some(node) => node,
                        None => {
                            // `{` on the line after its keyword: reopen the last
                            // statement if it was a plain one.
                            let prev =
                                stack.last_mut().and_then(|n| n.children.as_mut()).and_then(|c| {
                                    match c.last() {
                                        Some(p) if p.children.is_none() => c.pop(),
                                        _ => None,
                                    }
                                });
                            match prev {
                                Some(prev) => prev,
                                None => {
                                    return Err(ImportError::new(
                                        &line.loc,
                                        "'{' without a keyword before it",
                                    ))
                                }
                            }
                        }
                    };
                    if stack.len() > MAX_DEPTH {
                        return Err(ImportError::new(
                            &line.loc,
                            format!("blocks nested more than {MAX_DEPTH} deep"),
                        ));
                    }
                    stack.push(Node {
                        children: Some(Vec::new()),
                        ..node
                    });
                }
                Tok::Close => {
                    if let Some(node) = current.take() {
                        push_child(&mut stack, node);
                    }
                    if stack.len() == 1 {
                        return Err(ImportError::new(&line.loc, "'}' without a block to close"));
                    }
                    if let Some(block) = stack.pop() {
                        push_child(&mut stack, block);
                    }
                }
            }
        }
        if let Some(node) = current {
            push_child(&mut stack, node);
        }
    }
    if stack.len() > 1 {
        let open = &stack[1];
        let n = stack.len() - 1;
        return Err(ImportError::new(
            &open.loc,
            format!(
                "the '{{' of '{}' is never closed ({n} block{} still open at the end of the input)",
                open.head(),
                if n == 1 { "" } else { "s" }
            ),
        ));
    }
    Ok(stack.pop().and_then(|root| root.children).unwrap_or_default())
}

fn push_child(stack: &mut [Node], node: Node) {
    if let Some(children) = stack.last_mut().and_then(|n| n.children.as_mut()) {
        children.push(node);
    }
}

#[cfg(test)]
mod tests {
    use super::super::lexer::lex_str;
    use super::*;

    fn tree(text: &str) -> Result<Vec<Node>, ImportError> {
        parse(&lex_str(text, "t.conf")?)
    }

    #[test]
    fn blocks_and_statements() {
        let t = tree("a 1 2\nb {\n c\n d { e }\n}\nf\n{\ng\n}\n").unwrap();
        assert_eq!(t.len(), 3);
        assert_eq!(t[0].head(), "a 1 2");
        assert!(t[0].children.is_none());
        assert_eq!(t[1].children().len(), 2);
        assert_eq!(t[1].children()[1].children()[0].keyword, "e");
        assert_eq!(t[1].children()[1].loc.line, 4);
        // Allman-style brace on its own line.
        assert_eq!(t[2].keyword, "f");
        assert_eq!(t[2].children()[0].keyword, "g");
    }

    #[test]
    fn unbalanced() {
        let e = tree("a {\n b {\n").unwrap_err();
        assert_eq!(e.loc.line, 1);
        assert!(e.message.contains("never closed"), "{e}");
        let e = tree("a {\n}\n}\n").unwrap_err();
        assert_eq!(e.loc.line, 3);
        let e = tree("{\n").unwrap_err();
        assert_eq!(e.loc.line, 1);
        let e = tree(&"a {\n".repeat(100)).unwrap_err();
        assert!(e.message.contains("deep"), "{e}");
    }
}
