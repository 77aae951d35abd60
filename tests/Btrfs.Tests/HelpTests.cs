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

        private static readonly Lazy<HashSet<string>> HostCommands = new(() =>
            Pwsh.Run("Get-Command | ForEach-Object Name").Output.Select(o => o.ToString()).ToHashSet(StringComparer.OrdinalIgnoreCase));

        /// <summary>
        /// The part of an example this host can run: its statements up to the first that uses a command the
        /// host lacks (Export-Csv, Sort-Object, Get-ChildItem, Pester's It...), and of that statement, when it
        /// is a pipeline, the commands before that one. Whole: nothing was cut.
        /// </summary>
        private static (string Script, bool Whole) RunnablePart(ScriptBlockAst ast)
        {
            var parts = new List<string>();
            foreach (StatementAst statement in ast.EndBlock?.Statements ?? (IEnumerable<StatementAst>)Array.Empty<StatementAst>())
            {
                if (Available(statement))
                {
                    parts.Add(statement.Extent.Text);
                    continue;
                }

                if (statement is PipelineAst pipeline)
                {
                    string[] prefix = pipeline.PipelineElements.TakeWhile(Available).Select(e => e.Extent.Text).ToArray();
                    if (prefix.Length > 0)
                    {
                        parts.Add(string.Join(" | ", prefix));
                    }
                }

                return (string.Join("\n", parts), false);
            }

            return (string.Join("\n", parts), true);
        }

        private static bool Available(Ast ast) =>
            ast.FindAll(a => a is CommandAst, true).Cast<CommandAst>().All(c => c.GetCommandName() is string n && HostCommands.Value.Contains(n));

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
        public void ExamplesThatTheHostCanRunRunWithoutErrors()
        {
            // The examples use ./vm.img (with a reflink ./vm-clone.img and a plain copy ./vm-copy.img),
            // ./sparse.img, ./db.sqlite and ./images: make them, then run every example as far as this
            // host has its commands (Get-ChildItem, Sort-Object, Export-Csv are not in it). The absolute
            // paths some examples use for a real host stand for directories of the fixture (below).
            string dir = fs.NewDirectory(TestFs.Btrfs, "examples");
            string xfsDir = fs.NewDirectory(TestFs.Xfs, "examples");
            string ext4Dir = fs.NewDirectory(TestFs.Ext4, "examples");
            FileBuilder.Chunks(Path.Combine(xfsDir, "vm.img"), 4, 64 * 1024, 64 * 1024);
            FileBuilder.Chunks(Path.Combine(ext4Dir, "db.img"), 4, 64 * 1024, 64 * 1024);
            foreach (string sub in new[] { "db", "logs", "backups", "templates" })
            {
                Directory.CreateDirectory(Path.Combine(dir, sub));
            }

            FileBuilder.Chunks(Path.Combine(dir, "db", "data.img"), 8, 64 * 1024, 128 * 1024);
            FileBuilder.WriteNew(Path.Combine(dir, "logs", "syslog"), FileBuilder.Text(256 * 1024));
            FileBuilder.Chunks(Path.Combine(dir, "templates", "base.img"), 2, 1 << 20, 1 << 20, seed: 7);
            FileBuilder.Chunks(Path.Combine(dir, "templates", "base-copy.img"), 2, 1 << 20, 1 << 20, seed: 7);
            (string From, string To)[] hostPaths =
            {
                ("/var/lib/libvirt/images", "./images"),
                ("/srv/db/", "./db/"),
                ("/srv/backups/", "./backups/"),
                ("/srv/templates", "./templates"),
                ("/srv/images", "./images"),
                ("/srv/xfs/vm.img", Path.Combine(xfsDir, "vm.img")),
                ("/srv/ext4/db.img", Path.Combine(ext4Dir, "db.img")),
                ("/srv ", ". "),
                ("/var/log", "./logs"),
                ("/swap/swapfile 8GB", "./swap-host 64MB"), // a host-sized swapfile, fixture-sized
            };
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
                    Assert.True(errors.Length == 0, $"example does not parse: {code}");
                    (string runnable, bool whole) = RunnablePart(ast);
                    if (runnable.Length == 0)
                    {
                        log.WriteLine($"parsed only (its first command is not in this host): {code}");
                        continue;
                    }

                    if (!whole)
                    {
                        log.WriteLine($"run up to the first command this host lacks: {runnable}");
                    }

                    foreach ((string from, string to) in hostPaths)
                    {
                        runnable = runnable.Replace(from, to, StringComparison.Ordinal);
                    }

                    // Set-Location lives in Microsoft.PowerShell.Management, which this host lacks.
                    PwshResult r = Pwsh.Run($"$null = $ExecutionContext.SessionState.Path.SetLocation($dir)\n{runnable}", ("dir", dir));
                    Assert.True(r.Errors.Count == 0, $"example failed: {runnable}\n{string.Join("\n", r.Errors)}");
                    if (!runnable.Contains("-WhatIf", StringComparison.Ordinal))
                    {
                        Assert.True(r.Output.Count > 0, $"example produced nothing: {runnable}");
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
