namespace Btrfs.Tests
{
    using System;
    using System.Collections.Generic;
    using System.IO;
    using System.Linq;
    using System.Management.Automation;
    using System.Management.Automation.Language;
    using Btrfs.Kernel;
    using Btrfs.Tests.Infrastructure;
    using Xunit;
    using Xunit.Abstractions;

    /// <summary>Get-Help works for every exported cmdlet, the MAML is generated from the markdown, and the examples run.</summary>
    [Collection(FileSystemCollection.Name)]
    public class HelpTests(LoopFileSystems fs, ITestOutputHelper log)
    {
        private static readonly string[] Common =
        {
            "Verbose", "Debug", "ErrorAction", "WarningAction", "InformationAction", "ProgressAction", "ErrorVariable", "WarningVariable",
            "InformationVariable", "OutVariable", "OutBuffer", "PipelineVariable", "WhatIf", "Confirm",
        };

        public static IEnumerable<object[]> ExportedCmdlets() =>
            ManifestTests.ExportedCmdletNames().Select(n => new object[] { n });

        [Fact]
        public void TheCommittedMamlIsGeneratedFromTheMarkdown()
        {
            string expected = Btrfs.HelpGen.Program.Generate(Path.Combine(RepoPaths.Root, "src", "Help", "en-US"), typeof(Btrfs.Core.FileExtent).Assembly);
            string committed = File.ReadAllText(Path.Combine(RepoPaths.Root, "en-US", "Btrfs.dll-Help.xml"));
            Assert.True(expected == committed, "en-US/Btrfs.dll-Help.xml is stale: run `dotnet run --project src/Btrfs.HelpGen -- src/Help/en-US en-US/Btrfs.dll-Help.xml bin/Btrfs.dll`");
        }

        [Fact]
        public void TheGeneratorRefusesMarkdownThatDriftedFromTheCode()
        {
            string copy = Directory.CreateTempSubdirectory("btrfs-help-").FullName;
            try
            {
                foreach (string md in Directory.GetFiles(Path.Combine(RepoPaths.Root, "src", "Help", "en-US"), "*.md"))
                {
                    File.Copy(md, Path.Combine(copy, Path.GetFileName(md)));
                }

                string file = Path.Combine(copy, "Show-ExtentMap.md");
                File.WriteAllText(file, File.ReadAllText(file).Replace("Default value: 8", "Default value: 8").Replace("Required: True\nPosition: 0", "Required: True\nPosition: 1", StringComparison.Ordinal).Replace("### -Rows\n", "### -Lines\n", StringComparison.Ordinal).Replace("online version: https://", "online version: http://", StringComparison.Ordinal).Replace("-LiteralPath <String[]> [-Width <Int32>]", "-LiteralPath <String[]>", StringComparison.Ordinal));
                var ex = Assert.Throws<InvalidDataException>(() => Btrfs.HelpGen.Program.Generate(copy, typeof(Btrfs.Core.FileExtent).Assembly));
                Assert.Contains("Show-ExtentMap: -Path Position: the markdown says '1', the code '0'", ex.Message, StringComparison.Ordinal);
                Assert.Contains("Show-ExtentMap: -Lines is documented but the cmdlet has no such parameter", ex.Message, StringComparison.Ordinal);
                Assert.Contains("Show-ExtentMap: -Rows is a parameter of the cmdlet but has no '### -Rows' section", ex.Message, StringComparison.Ordinal);
                Assert.Contains("Show-ExtentMap: online version: the markdown says 'http://", ex.Message, StringComparison.Ordinal);
                Assert.Contains("Show-ExtentMap: SYNTAX of LiteralPath lists missing -Width", ex.Message, StringComparison.Ordinal);

                File.Delete(file);
                ex = Assert.Throws<InvalidDataException>(() => Btrfs.HelpGen.Program.Generate(copy, typeof(Btrfs.Core.FileExtent).Assembly));
                Assert.Contains("Show-ExtentMap has no help markdown", ex.Message, StringComparison.Ordinal);
            }
            finally
            {
                Directory.Delete(copy, recursive: true);
            }
        }

        [SkippableFact]
        public void GetHelpOnlineOpensTheCmdletsOwnPage()
        {
            // Before: Test-NoCow -Online opened chattr(1) (its first related link) and Set-NoCow -Online failed.
            // A stand-in xdg-open (what .NET starts a URL with on Linux) records what would have been opened.
            string bin = Directory.CreateTempSubdirectory("btrfs-online-").FullName;
            try
            {
                string opened = Path.Combine(bin, "opened.txt");
                File.WriteAllText(Path.Combine(bin, "xdg-open"), $"#!/bin/sh\necho \"$1\" >> {opened}\n");
                File.SetUnixFileMode(Path.Combine(bin, "xdg-open"), UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
                string[] cmdlets = ManifestTests.ExportedCmdletNames().ToArray();
                RealPwsh.Result r = RealPwsh.Run(
                    "$env:PATH = $Bin + ':' + $env:PATH\n" +
                    "foreach ($c in $Cmdlets -split ',') { (Get-Command $c).HelpUri; Get-Help $c -Online }",
                    null,
                    ("Bin", bin),
                    ("Cmdlets", string.Join(',', cmdlets)));
                Assert.True(r.ExitCode == 0 && r.StdErr.Length == 0, r.StdOut + r.StdErr);
                string[] expected = cmdlets.Select(c => Btrfs.Commands.HelpLinks.Pages + c + ".md").ToArray();
                Assert.Equal(expected, r.Lines);

                // pwsh does not wait for the xdg-opens it starts: they write when they get to run (in any order under load).
                var clock = System.Diagnostics.Stopwatch.StartNew();
                while ((!File.Exists(opened) || File.ReadAllLines(opened).Length < expected.Length) && clock.Elapsed < TimeSpan.FromSeconds(60))
                {
                    System.Threading.Thread.Sleep(50);
                }

                Assert.Equal(expected.Order(StringComparer.Ordinal), File.ReadAllLines(opened).Order(StringComparer.Ordinal));

                // Each page is this repository's markdown for that cmdlet.
                Assert.All(cmdlets, c => Assert.True(File.Exists(Path.Combine(RepoPaths.Root, "src", "Help", "en-US", c + ".md")), c));
                Assert.StartsWith("https://github.com/btrfs-pwsh/Btrfs/blob/main/", Btrfs.Commands.HelpLinks.Pages, StringComparison.Ordinal);
                Assert.EndsWith(Path.GetRelativePath(RepoPaths.Root, Path.Combine(RepoPaths.Root, "src", "Help", "en-US")) + "/", Btrfs.Commands.HelpLinks.Pages, StringComparison.Ordinal);
            }
            finally
            {
                Directory.Delete(bin, recursive: true);
            }
        }

        [Theory]
        [MemberData(nameof(ExportedCmdlets))]
        public void EveryCmdletHasSynopsisDescriptionParametersAndExamples(string cmdlet)
        {
            PwshResult r = Pwsh.Run(
                "$h = Get-Help $name -Full; $c = Get-Command $name; " +
                "$h.Synopsis; ($h.Description | ForEach-Object Text) -join ' '; @($h.Examples.Example).Count; " +
                "$c.Parameters.Keys | ForEach-Object { $k = $_; $p = $h.Parameters.Parameter | Where-Object Name -eq $k; '{0}={1}' -f $k, (($p.Description | ForEach-Object Text) -join ' ') }",
                ("name", cmdlet));
            Assert.Empty(r.Errors);
            string synopsis = r.Output[0].ToString();
            Assert.False(string.IsNullOrWhiteSpace(synopsis));
            Assert.NotEqual(cmdlet, synopsis.Trim()); // Get-Help falls back to the syntax/name when no help is found
            Assert.True(r.Output[1].ToString().Length > 100, "description too short");
            Assert.True((int)r.Output[2].BaseObject >= 2, "fewer than two examples");
            foreach (string line in r.Output.Skip(3).Select(o => o.ToString()))
            {
                string[] kv = line.Split('=', 2);
                if (Common.Contains(kv[0]))
                {
                    continue;
                }

                Assert.True(kv[1].Length > 20, $"-{kv[0]} of {cmdlet} has no help text");
            }
        }

        [Theory]
        [MemberData(nameof(ExportedCmdlets))]
        public void EveryLimitAParameterEnforcesIsInItsHelp(string cmdlet)
        {
            // A limit PowerShell enforces ([ValidateRange]) beyond the obvious (0 or 1 up to the type's maximum) is said in
            // the parameter's help, so a user does not learn it from "The 1024 argument is less than the minimum allowed
            // range of 4096" (before: -MaxBytesPerSecond's 4096 and -Passes' 100 were in no help; a hostile test).
            PwshResult r = Pwsh.Run(
                "$h = Get-Help $name -Full; (Get-Command $name).Parameters.Values | ForEach-Object { $p = $_; $p.Attributes | Where-Object { $_ -is [System.Management.Automation.ValidateRangeAttribute] } | ForEach-Object { $d = $h.Parameters.Parameter | Where-Object Name -eq $p.Name; [string]::Format([cultureinfo]::InvariantCulture, '{0}|{1}|{2}|{3}', $p.Name, $_.MinRange, $_.MaxRange, ((($d.Description | ForEach-Object Text) -join ' ') -replace '[|]', ' ')) } }",
                ("name", cmdlet));
            Assert.Empty(r.Errors);
            var missing = new List<string>();
            foreach (string[] p in r.Output.Select(o => o.ToString()!.Split('|', 4)))
            {
                Assert.False(p[1].Length == 0 || p[2].Length == 0, $"-{p[0]}: a range kind ([ValidateRange(ValidateRangeKind...)]) this test does not read yet");
                long min = long.Parse(p[1], System.Globalization.CultureInfo.InvariantCulture);
                long max = long.Parse(p[2], System.Globalization.CultureInfo.InvariantCulture);
                if (min is not (0 or 1) && !Said(min, p[3]))
                {
                    missing.Add($"-{p[0]}: its least value {min}");
                }

                if (max is not (int.MaxValue or long.MaxValue) && !Said(max, p[3]))
                {
                    missing.Add($"-{p[0]}: its largest value {max}");
                }
            }

            Assert.True(missing.Count == 0, $"{cmdlet}: the help does not say {string.Join("; ", missing)}");

            // As digits (with or without thousands separators), or in KiB, MiB or GiB where it is a whole number of them.
            static bool Said(long value, string text)
            {
                var forms = new List<string> { value.ToString(System.Globalization.CultureInfo.InvariantCulture), value.ToString("N0", System.Globalization.CultureInfo.InvariantCulture) };
                foreach ((long unit, string name) in new[] { (1L << 10, "KiB"), (1L << 20, "MiB"), (1L << 30, "GiB") })
                {
                    if (value >= unit && value % unit == 0)
                    {
                        forms.Add($"{value / unit} {name}");
                    }
                }

                return forms.Any(f => System.Text.RegularExpressions.Regex.IsMatch(text, $@"(?<![\d.,-]){System.Text.RegularExpressions.Regex.Escape(f)}(?!\d|[.,]\d)"));
            }
        }

        [Theory]
        [MemberData(nameof(ExportedCmdlets))]
        public void OutputTypesAndTheirPropertiesAreDocumented(string cmdlet)
        {
            PwshResult r = Pwsh.Run(
                "$h = Get-Help $name -Full; $c = Get-Command $name; " +
                "($h.returnValues.returnValue | ForEach-Object { $_.type.name + ' ' + (($_.description | ForEach-Object Text) -join ' ') }) -join ' '; " +
                "$c.OutputType | ForEach-Object { $_.Type.FullName }",
                ("name", cmdlet));
            Assert.Empty(r.Errors);
            string outputs = r.Output[0].ToString();
            var missing = new List<string>();
            foreach (string typeName in r.Output.Skip(1).Select(o => o.ToString()))
            {
                Assert.Contains(typeName, outputs, StringComparison.Ordinal);
                Type? type = typeof(Btrfs.Core.FileExtent).Assembly.GetType(typeName);
                missing.AddRange((type?.GetProperties() ?? Array.Empty<System.Reflection.PropertyInfo>())
                    .Select(p => p.Name)
                    .Where(p => !System.Text.RegularExpressions.Regex.IsMatch(outputs, $@"\b{p}\b"))
                    .Select(p => $"{typeName}.{p}"));
            }

            Assert.True(missing.Count == 0, $"{cmdlet}: the OUTPUTS section does not name {string.Join(", ", missing)}");
        }

        [Fact]
        public void EveryCmdletHasAPipelineExample()
        {
            string[] consumers = { "Where-Object", "ForEach-Object", "Export-Csv", "Should", "Sort-Object", "Select-Object", "Group-Object", "Out-File" };
            foreach (string cmdlet in ManifestTests.ExportedCmdletNames())
            {
                PwshResult codes = Pwsh.Run("(Get-Help $name -Full).Examples.Example | ForEach-Object { $_.Code }", ("name", cmdlet));
                bool found = codes.Output.Select(o => Parser.ParseInput(o.ToString(), out _, out _))
                    .SelectMany(a => a.FindAll(x => x is PipelineAst p && p.PipelineElements.Count > 1, true).Cast<PipelineAst>())
                    .Any(p => p.PipelineElements.OfType<CommandAst>().Any(c => consumers.Contains(c.GetCommandName(), StringComparer.OrdinalIgnoreCase)));
                Assert.True(found, $"{cmdlet} has no example that pipes into {string.Join(", ", consumers)}");
            }
        }

        [SkippableFact]
        public void EveryHelpExampleRunsWholeWithoutErrors()
        {
            // Examples run whole in a directory of the fixture, on the full SDK, host paths mapped to the fixture.
            var examples = new ExampleFixture(fs);
            int ran = 0;
            foreach (string cmdlet in ManifestTests.ExportedCmdletNames())
            {
                int ranHere = 0;
                PwshResult codes = Pwsh.Run("(Get-Help $name -Full).Examples.Example | ForEach-Object { $_.Code }", ("name", cmdlet));
                foreach (string code in codes.Output.Select(o => o.ToString()))
                {
                    ScriptBlockAst ast = Parser.ParseInput(code, out _, out ParseError[] errors);
                    Assert.True(errors.Length == 0, $"example does not parse: {code}");
                    examples.Run(ast, log);
                    ran++;
                    ranHere++;
                }

                Assert.True(ranHere >= 2, $"{cmdlet} has only {ranHere} examples");
            }

            Assert.True(ran >= 2, $"only {ran} examples could run");
        }
    }
}
