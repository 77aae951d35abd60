namespace Btrfs.HelpGen
{
    using System;
    using System.Collections.Generic;
    using System.Linq;
    using System.Management.Automation;
    using System.Reflection;

    /// <summary>
    /// Takes each parameter's facts from the code, the way PowerShell sees them (CommandMetadata): type,
    /// parameter sets, aliases, whether it is required, its position, pipeline input and wildcards. The
    /// markdown gives the words. A parameter documented but not in the code, one in the code but not
    /// documented, or a markdown fact that differs from the code is an error: help cannot drift.
    /// </summary>
    public static class CodeParameters
    {
        private const string AllSets = "__AllParameterSets";

        /// <summary>Fills <paramref name="help"/>'s parameter facts from the cmdlet in <paramref name="module"/>; returns the differences found.</summary>
        public static List<string> Apply(CommandHelp help, Assembly module)
        {
            var problems = new List<string>();
            Type? type = module.GetTypes().FirstOrDefault(t => t.GetCustomAttribute<CmdletAttribute>() is CmdletAttribute a && $"{a.VerbName}-{a.NounName}" == help.Name);
            if (type is null)
            {
                problems.Add($"{help.Name}: no cmdlet of that name in {module.GetName().Name}");
                return problems;
            }

            CmdletAttribute cmdlet = type.GetCustomAttribute<CmdletAttribute>()!;
            if ((cmdlet.HelpUri ?? string.Empty) != help.OnlineVersion)
            {
                problems.Add($"{help.Name}: online version: the markdown says '{help.OnlineVersion}', the cmdlet's HelpUri '{cmdlet.HelpUri}'");
            }

            var metadata = new CommandMetadata(type);
            var code = metadata.Parameters.Values.ToDictionary(p => p.Name, StringComparer.Ordinal);
            string[] shouldProcess = cmdlet.SupportsShouldProcess ? new[] { "WhatIf", "Confirm" } : Array.Empty<string>();

            foreach (ParameterHelp p in help.Parameters)
            {
                if (shouldProcess.Contains(p.Name))
                {
                    continue; // common parameters of SupportsShouldProcess: PowerShell's, documented as platyPS does
                }

                if (!code.TryGetValue(p.Name, out ParameterMetadata? m))
                {
                    problems.Add($"{help.Name}: -{p.Name} is documented but the cmdlet has no such parameter");
                    continue;
                }

                PropertyInfo? property = type.GetProperty(p.Name);
                var facts = new ParameterHelp
                {
                    Type = m.ParameterType.Name,
                    Required = m.ParameterSets.Values.Any(s => s.IsMandatory),
                    Position = m.ParameterSets.Values.Select(s => s.Position).FirstOrDefault(pos => pos >= 0, int.MinValue) is int pos && pos >= 0 ? pos.ToString(System.Globalization.CultureInfo.InvariantCulture) : "Named",
                    PipelineInput = Pipeline(m),
                    Globbing = property?.GetCustomAttribute<SupportsWildcardsAttribute>() is not null,
                };
                facts.Aliases.AddRange(m.Aliases);
                if (!m.ParameterSets.ContainsKey(AllSets))
                {
                    facts.Sets.AddRange(m.ParameterSets.Keys.OrderBy(k => k, StringComparer.Ordinal));
                }

                Compare(help.Name, p, facts, problems);
                p.Type = facts.Type;
                p.Required = facts.Required;
                p.Position = facts.Position;
                p.PipelineInput = facts.PipelineInput;
                p.Globbing = facts.Globbing;
                p.Aliases.Clear();
                p.Aliases.AddRange(facts.Aliases);
                p.Sets.Clear();
                p.Sets.AddRange(facts.Sets);
            }

            foreach (string name in code.Keys.Where(n => help.Parameters.All(p => p.Name != n)))
            {
                problems.Add($"{help.Name}: -{name} is a parameter of the cmdlet but has no '### -{name}' section");
            }

            var sets = code.Values.SelectMany(m => m.ParameterSets.Keys).Where(k => k != AllSets).Distinct().ToHashSet(StringComparer.Ordinal);
            if (sets.Count == 0)
            {
                sets.Add(AllSets);
            }

            if (!sets.SetEquals(help.ParameterSets))
            {
                problems.Add($"{help.Name}: SYNTAX lists the sets {string.Join(", ", help.ParameterSets)}, the cmdlet has {string.Join(", ", sets.OrderBy(s => s, StringComparer.Ordinal))}");
            }

            // Each SYNTAX line names exactly the parameters of its set (the page is read on its own, too).
            foreach ((string set, string line) in help.SyntaxLines)
            {
                var written = System.Text.RegularExpressions.Regex.Matches(line, @"(?<=[\[ ])-([A-Za-z]+)\b").Select(m => m.Groups[1].Value).ToHashSet(StringComparer.Ordinal);
                var actual = code.Values
                    .Where(m => m.ParameterSets.ContainsKey(AllSets) || m.ParameterSets.ContainsKey(set))
                    .Select(m => m.Name)
                    .Concat(shouldProcess)
                    .ToHashSet(StringComparer.Ordinal);
                if (!written.SetEquals(actual))
                {
                    problems.Add($"{help.Name}: SYNTAX of {set} lists {string.Join(" ", written.Except(actual).Select(n => "-" + n).Concat(actual.Except(written).Select(n => "missing -" + n)))}");
                }
            }

            string defaultSet = cmdlet.DefaultParameterSetName ?? AllSets;
            if (help.ParameterSets.Count > 0 && sets.Count > 1 && help.ParameterSets[0] != defaultSet)
            {
                problems.Add($"{help.Name}: the first set in SYNTAX must be the default, {defaultSet}");
            }

            return problems;
        }

        private static string Pipeline(ParameterMetadata m)
        {
            bool byValue = m.ParameterSets.Values.Any(s => s.ValueFromPipeline);
            bool byName = m.ParameterSets.Values.Any(s => s.ValueFromPipelineByPropertyName);
            return (byValue, byName) switch
            {
                (true, true) => "True (ByPropertyName, ByValue)",
                (true, false) => "True (ByValue)",
                (false, true) => "True (ByPropertyName)",
                _ => "False",
            };
        }

        private static void Compare(string command, ParameterHelp doc, ParameterHelp code, List<string> problems)
        {
            void Check(string what, string documented, string actual)
            {
                if (documented != actual)
                {
                    problems.Add($"{command}: -{doc.Name} {what}: the markdown says '{documented}', the code '{actual}'");
                }
            }

            Check("Type", doc.Type, code.Type);
            Check("Required", doc.Required.ToString(), code.Required.ToString());
            Check("Position", doc.Position, code.Position);
            Check("Accept pipeline input", doc.PipelineInput, code.PipelineInput);
            Check("Accept wildcard characters", doc.Globbing.ToString(), code.Globbing.ToString());
            Check("Aliases", string.Join(", ", doc.Aliases.OrderBy(a => a, StringComparer.Ordinal)), string.Join(", ", code.Aliases.OrderBy(a => a, StringComparer.Ordinal)));
            Check("Parameter Sets", doc.Sets.Count == 0 ? "(All)" : string.Join(", ", doc.Sets.OrderBy(s => s, StringComparer.Ordinal)), code.Sets.Count == 0 ? "(All)" : string.Join(", ", code.Sets));
        }
    }
}
