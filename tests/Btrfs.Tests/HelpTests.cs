namespace Btrfs.Tests
{
    using System;
    using System.Collections.Generic;
    using System.IO;
    using System.Linq;
    using System.Management.Automation;
    using System.Management.Automation.Language;
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
            string expected = Btrfs.HelpGen.Program.Generate(Path.Combine(RepoPaths.Root, "src", "Help", "en-US"));
            string committed = File.ReadAllText(Path.Combine(RepoPaths.Root, "en-US", "Btrfs.dll-Help.xml"));
            Assert.True(expected == committed, "en-US/Btrfs.dll-Help.xml is stale: run `dotnet run --project src/Btrfs.HelpGen -- src/Help/en-US en-US/Btrfs.dll-Help.xml`");
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

        [SkippableFact]
        public void ExamplesThatTheHostCanRunRunWithoutErrors()
        {
            // The examples use ./vm.img (with a reflink ./vm-clone.img and a plain copy ./vm-copy.img),
            // ./sparse.img, ./db.sqlite and ./images: make them, then run every example
            // whose commands all exist in this host (Get-ChildItem, Sort-Object, Export-Csv do not).
            string dir = fs.NewDirectory(TestFs.Btrfs, "examples");
            FileBuilder.Chunks(Path.Combine(dir, "vm.img"), 6, 64 * 1024, 128 * 1024);
            Shell.Run("cp", "--reflink=always", Path.Combine(dir, "vm.img"), Path.Combine(dir, "vm-clone.img"));
            Shell.Run("cp", "--reflink=never", Path.Combine(dir, "vm.img"), Path.Combine(dir, "vm-copy.img"));
            FileBuilder.Sparse(Path.Combine(dir, "sparse.img"), 1 << 20);
            FileBuilder.WriteAt(Path.Combine(dir, "sparse.img"), 4096, FileBuilder.RandomBytes(4096, 1));
            FileBuilder.Chunks(Path.Combine(dir, "db.sqlite"), 8, 16 * 1024, 256 * 1024, fsyncEach: false);
            string images = Directory.CreateDirectory(Path.Combine(dir, "images")).FullName;
            FileBuilder.Chunks(Path.Combine(images, "old.img"), 2, 64 * 1024, 64 * 1024);
            FileBuilder.WriteNew(Path.Combine(images, "new.img"), Array.Empty<byte>());

            int ran = 0;
            foreach (string cmdlet in ManifestTests.ExportedCmdletNames())
            {
                int ranHere = 0;
                PwshResult codes = Pwsh.Run("(Get-Help $name -Full).Examples.Example | ForEach-Object { $_.Code }", ("name", cmdlet));
                foreach (string code in codes.Output.Select(o => o.ToString()))
                {
                    ScriptBlockAst ast = Parser.ParseInput(code, out _, out ParseError[] errors);
                    Assert.Empty(errors);
                    string[] commands = ast.FindAll(a => a is CommandAst, true).Cast<CommandAst>().Select(c => c.GetCommandName()).Distinct().ToArray();
                    bool runnable = Pwsh.Run("$names | ForEach-Object { [bool](Get-Command $_ -ErrorAction SilentlyContinue) }", ("names", commands)).Output.All(o => (bool)o.BaseObject);
                    if (!runnable)
                    {
                        log.WriteLine($"not runnable here (needs {string.Join(", ", commands)}): {code}");
                        continue;
                    }

                    // Set-Location lives in Microsoft.PowerShell.Management, which this host lacks.
                    PwshResult r = Pwsh.Run($"$null = $ExecutionContext.SessionState.Path.SetLocation($dir)\n{code}", ("dir", dir));
                    Assert.True(r.Errors.Count == 0, $"example failed: {code}\n{string.Join("\n", r.Errors)}");
                    if (!code.Contains("-WhatIf", StringComparison.Ordinal))
                    {
                        Assert.True(r.Output.Count > 0, $"example produced nothing: {code}");
                    }

                    ran++;
                    ranHere++;
                }

                Assert.True(ranHere >= 2, $"only {ranHere} examples of {cmdlet} could run in this host");
            }

            Assert.True(ran >= 2, $"only {ran} examples could run");
        }
    }
}
