//! Splitting a Dockerfile into build stages.

use std::collections::HashSet;

use crate::error::{ParseError, ParseErrorKind};
use crate::instructions::{parse_command, ArgDecl, Command, Instruction};
use crate::node::Dockerfile;

/// One build stage: a FROM and the instructions up to the next FROM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stage {
    /// Position among the stages (0-based); `COPY --from=0` refers to it.
    pub index: usize,
    /// `AS name`, lowercased.
    pub name: Option<String>,
    /// Base image or stage name, unexpanded (may use global ARGs).
    pub image: String,
    pub platform: Option<String>,
    /// The FROM line itself.
    pub from: Command,
    /// Everything after FROM, in order.
    pub commands: Vec<Command>,
}

impl Dockerfile {
    /// All instructions typed, with source locations.
    pub fn commands(&self) -> Result<Vec<Command>, ParseError> {
        self.nodes.iter().map(parse_command).collect()
    }

    /// All instructions typed.
    pub fn instructions(&self) -> Result<Vec<Instruction>, ParseError> {
        Ok(self
            .commands()?
            .into_iter()
            .map(|c| c.instruction)
            .collect())
    }

    /// The global ARGs (declared before the first FROM) and the stages.
    pub fn stages(&self) -> Result<(Vec<ArgDecl>, Vec<Stage>), ParseError> {
        let mut globals = Vec::new();
        let mut stages: Vec<Stage> = Vec::new();
        let mut names = HashSet::new();
        for cmd in self.commands()? {
            let at = |k| ParseError::new(k, cmd.start_line, cmd.end_line);
            match (&cmd.instruction, stages.last_mut()) {
                (Instruction::From(f), _) => {
                    if let Some(n) = &f.name
                        && !names.insert(n.clone())
                    {
                        return Err(at(ParseErrorKind::DuplicateStageName(n.clone())));
                    }
                    stages.push(Stage {
                        index: stages.len(),
                        name: f.name.clone(),
                        image: f.image.clone(),
                        platform: f.platform.clone(),
                        from: cmd.clone(),
                        commands: Vec::new(),
                    });
                }
                (Instruction::Arg(args), None) => globals.extend(args.iter().cloned()),
                (_, None) => return Err(at(ParseErrorKind::NoStage)),
                (_, Some(stage)) => stage.commands.push(cmd),
            }
        }
        Ok((globals, stages))
    }
}
