import { Command } from 'commander';
import { UsageError } from '../usage-error.js';

const SHELLS = ['bash', 'zsh', 'fish', 'powershell'] as const;

interface Node {
  path: string[];
  words: string[];
}

/** Every command path with the words that may follow it (subcommands, then flags). */
function walk(cmd: Command, path: string[] = []): Node[] {
  const words = [...cmd.commands.flatMap((c) => [c.name(), ...c.aliases()]), ...cmd.options.flatMap((o) => [o.long, o.short].filter((x): x is string => Boolean(x)))];
  return [{ path, words }, ...cmd.commands.flatMap((c) => [c.name(), ...c.aliases()].flatMap((n) => walk(c, [...path, n])))];
}

/**
 * Shell completion scripts generated from the command tree itself, so they
 * never drift from the CLI. Completes commands, subcommands and flags.
 */
export function completionScript(program: Command, shell: string): string {
  const nodes = walk(program);
  switch (shell.toLowerCase()) {
    case 'bash': {
      const cases = nodes.map((n) => `    "${n.path.join(' ')}") words="${n.words.join(' ')}" ;;`).join('\n');
      return `# oz bash completion: eval "$(oz completions bash)"
_oz_complete() {
  local cur path words i
  cur="\${COMP_WORDS[COMP_CWORD]}"
  path=""
  for ((i=1; i<COMP_CWORD; i++)); do
    [[ "\${COMP_WORDS[i]}" == -* ]] && continue
    path="\${path:+$path }\${COMP_WORDS[i]}"
  done
  case "$path" in
${cases}
    *) words="" ;;
  esac
  COMPREPLY=( $(compgen -W "$words" -- "$cur") )
}
complete -F _oz_complete oz
`;
    }
    case 'zsh':
      return `# oz zsh completion: eval "$(oz completions zsh)"
autoload -U +X bashcompinit && bashcompinit
${completionScript(program, 'bash')}`;
    case 'fish':
      return `# oz fish completion: oz completions fish | source\n${nodes
        .filter((n) => n.path.length === 0)
        .flatMap((n) => n.words.filter((w) => !w.startsWith('-')).map((w) => `complete -c oz -n "__fish_use_subcommand" -a "${w}"`))
        .join('\n')}\n${nodes
        .filter((n) => n.path.length === 1)
        .flatMap((n) => n.words.filter((w) => !w.startsWith('-')).map((w) => `complete -c oz -n "__fish_seen_subcommand_from ${n.path[0]}" -a "${w}"`))
        .join('\n')}\n`;
    case 'powershell': {
      const cases = nodes.map((n) => `    '${n.path.join(' ')}' { '${n.words.join(' ')}' }`).join('\n');
      return `# oz PowerShell completion: oz completions powershell | Out-String | Invoke-Expression
Register-ArgumentCompleter -Native -CommandName oz -ScriptBlock {
  param($wordToComplete, $commandAst, $cursorPosition)
  $path = @($commandAst.CommandElements | Select-Object -Skip 1 | ForEach-Object { $_.ToString() } | Where-Object { -not $_.StartsWith('-') -and $_ -ne $wordToComplete }) -join ' '
  $words = switch ($path) {
${cases}
    default { '' }
  }
  $words -split ' ' | Where-Object { $_ -and $_.StartsWith($wordToComplete) } | ForEach-Object {
    [System.Management.Automation.CompletionResult]::new($_, $_, 'ParameterValue', $_)
  }
}
`;
    }
    default:
      throw new UsageError(`completions: the shell must be ${SHELLS.join(', ')} (got "${shell}")`);
  }
}

export function completionsCommand(program: Command): Command {
  return new Command('completions')
    .description(`Print a shell completion script: ${SHELLS.join(', ')}`)
    .argument('<shell>', SHELLS.join(', '))
    .action((shell: string) => {
      process.stdout.write(completionScript(program, shell));
    });
}
