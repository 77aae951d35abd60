namespace Btrfs.HelpGen
{
    using System;
    using System.Collections.Generic;
    using System.Linq;
    using System.Text.RegularExpressions;

    /// <summary>
    /// Reads the platyPS markdown schema 2.0.0: front matter, "# Name", then "## SYNOPSIS",
    /// "## SYNTAX", "## DESCRIPTION", "## EXAMPLES", "## PARAMETERS" (each "### -Name" with a yaml
    /// block), "## INPUTS", "## OUTPUTS", "## NOTES", "## RELATED LINKS".
    /// </summary>
    public static partial class MarkdownHelpParser
    {
        public static CommandHelp Parse(string markdown)
        {
            var help = new CommandHelp();
            string[] lines = markdown.Replace("\r\n", "\n").Split('\n');
            int i = 0;
            if (lines.Length > 0 && lines[0] == "---")
            {
                i = Array.IndexOf(lines, "---", 1) + 1;
                foreach (string meta in lines[1..Math.Max(1, i - 1)])
                {
                    if (meta.StartsWith("online version:", StringComparison.Ordinal))
                    {
                        help.OnlineVersion = meta["online version:".Length..].Trim();
                    }
                }
            }

            string section = string.Empty;
            string? sub = null;
            var body = new List<string>();
            void Flush()
            {
                Apply(help, section, sub, body);
                body.Clear();
            }

            for (; i < lines.Length; i++)
            {
                string line = lines[i];
                if (line.StartsWith("```", StringComparison.Ordinal))
                {
                    // Keep fenced blocks whole, fences included, so headings inside code are not headings.
                    body.Add(line);
                    for (i++; i < lines.Length && !lines[i].StartsWith("```", StringComparison.Ordinal); i++)
                    {
                        body.Add(lines[i]);
                    }

                    body.Add("```");
                    continue;
                }

                if (line.StartsWith("# ", StringComparison.Ordinal))
                {
                    help.Name = line[2..].Trim();
                }
                else if (line.StartsWith("## ", StringComparison.Ordinal))
                {
                    Flush();
                    section = line[3..].Trim().ToUpperInvariant();
                    sub = null;
                }
                else if (line.StartsWith("### ", StringComparison.Ordinal))
                {
                    Flush();
                    sub = line[4..].Trim();
                }
                else
                {
                    body.Add(line);
                }
            }

            Flush();
            if (help.Name.Length == 0 || help.Synopsis.Length == 0)
            {
                throw new FormatException("help markdown needs '# Name' and '## SYNOPSIS'");
            }

            return help;
        }

        private static void Apply(CommandHelp help, string section, string? sub, List<string> body)
        {
            List<string> paragraphs = Paragraphs(body);
            switch (section)
            {
                case "SYNOPSIS":
                    help.Synopsis = string.Join(" ", paragraphs);
                    break;
                case "DESCRIPTION":
                    help.Description.AddRange(paragraphs);
                    break;
                case "SYNTAX" when sub is not null:
                    string set = sub.Replace("(Default)", string.Empty).Trim();
                    help.ParameterSets.Add(set);
                    help.SyntaxLines[set] = SplitFence(body).Code.Trim();
                    break;
                case "EXAMPLES" when sub is not null:
                    var (code, rest) = SplitFence(body);
                    var ex = new ExampleHelp { Title = sub, Code = code };
                    ex.Remarks.AddRange(Paragraphs(rest));
                    help.Examples.Add(ex);
                    break;
                case "PARAMETERS" when sub is not null && sub.StartsWith('-'):
                    help.Parameters.Add(ParseParameter(sub[1..], body));
                    break;
                case "INPUTS" when sub is not null:
                    help.Inputs.Add(Typed(sub, paragraphs));
                    break;
                case "OUTPUTS" when sub is not null:
                    help.Outputs.Add(Typed(sub, paragraphs));
                    break;
                case "NOTES":
                    help.Notes.AddRange(paragraphs);
                    break;
                case "RELATED LINKS":
                    foreach (string l in body)
                    {
                        Match m = LinkLine().Match(l.Trim());
                        if (m.Success)
                        {
                            help.Links.Add((m.Groups[1].Value, m.Groups[2].Value));
                        }
                    }

                    break;
            }
        }

        private static TypeHelp Typed(string name, List<string> paragraphs)
        {
            var t = new TypeHelp { Name = name };
            t.Description.AddRange(paragraphs);
            return t;
        }

        private static ParameterHelp ParseParameter(string name, List<string> body)
        {
            var (yaml, rest) = SplitFence(body);
            var p = new ParameterHelp { Name = name };
            p.Description.AddRange(Paragraphs(rest));
            foreach (string line in yaml.Split('\n'))
            {
                int colon = line.IndexOf(':');
                if (colon < 0)
                {
                    continue;
                }

                string key = line[..colon].Trim();
                string value = line[(colon + 1)..].Trim();
                switch (key)
                {
                    case "Type": p.Type = value; break;
                    case "Parameter Sets":
                        if (value != "(All)")
                        {
                            p.Sets.AddRange(value.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries));
                        }

                        break;
                    case "Aliases": p.Aliases.AddRange(value.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)); break;
                    case "Required": p.Required = bool.Parse(value); break;
                    case "Position": p.Position = value; break;
                    case "Default value": p.DefaultValue = value; break;
                    case "Accept pipeline input": p.PipelineInput = value; break;
                    case "Accept wildcard characters": p.Globbing = bool.Parse(value); break;
                }
            }

            if (p.Type.Length == 0)
            {
                throw new FormatException($"parameter -{name} has no yaml block with a Type");
            }

            return p;
        }

        /// <summary>The first fenced block's content, and the lines outside it.</summary>
        private static (string Code, List<string> Remainder) SplitFence(List<string> body)
        {
            int start = body.FindIndex(l => l.StartsWith("```", StringComparison.Ordinal));
            if (start < 0)
            {
                return (string.Empty, body.ToList());
            }

            int end = body.FindIndex(start + 1, l => l.StartsWith("```", StringComparison.Ordinal));
            string code = string.Join("\n", body.Skip(start + 1).Take(end - start - 1));
            var rest = body.Take(start).Concat(body.Skip(end + 1)).ToList();
            return (code, rest);
        }

        /// <summary>Blank-line separated paragraphs, lines joined with spaces; fenced blocks dropped.</summary>
        private static List<string> Paragraphs(IEnumerable<string> lines)
        {
            var result = new List<string>();
            var current = new List<string>();
            bool inFence = false;
            foreach (string raw in lines)
            {
                if (raw.StartsWith("```", StringComparison.Ordinal))
                {
                    inFence = !inFence;
                    continue;
                }

                if (inFence)
                {
                    continue;
                }

                if (raw.Trim().Length == 0)
                {
                    if (current.Count > 0)
                    {
                        result.Add(string.Join(" ", current));
                        current.Clear();
                    }
                }
                else
                {
                    current.Add(raw.Trim());
                }
            }

            if (current.Count > 0)
            {
                result.Add(string.Join(" ", current));
            }

            return result;
        }

        [GeneratedRegex(@"^\[([^\]]+)\]\(([^)]*)\)$")]
        private static partial Regex LinkLine();
    }
}
