//! # berth-dockerfile
//!
//! Dockerfiles as buildkit reads them, without executing anything: [`parser`] turns the
//! text into instructions (directives, continuations, flags, JSON or shell forms,
//! heredocs) and [`shell`] is the lexer that expands `$VARIABLES` and splits words the
//! way buildkit's does, for the builder to use on each instruction's arguments.
//!
//! [`ignore`] reads `.dockerignore` with Docker's pattern rules (the CLI filters the
//! context with it; the builder drops `.dockerignore` and the Dockerfile when it names
//! them).
//!
//! **Owns:** the syntax. **Does not:** run instructions, read the build context, or know
//! images (the builder does).

pub mod ignore;
pub mod parser;
pub mod shell;

pub use ignore::Ignore;
pub use parser::{Arg, Dockerfile, Heredoc, Instruction, ParseError, parse};
pub use shell::{Env, Lex, LexError};
