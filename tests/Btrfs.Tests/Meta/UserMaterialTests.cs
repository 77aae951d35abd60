namespace Btrfs.Tests
{
    using System;
    using System.Collections.Generic;
    using System.IO;
    using System.Linq;
    using System.Management.Automation.Language;
    using Btrfs.Core;
    using Btrfs.Kernel;
    using Btrfs.Tests.Infrastructure;
    using Xunit;
    using Xunit.Abstractions;

    /// <summary>
    /// What users read and copy: Get-Help about_Btrfs, and the Pester test and runbook in examples/, run
    /// against the loop filesystems.
    /// </summary>
    [Collection(FileSystemCollection.Name)]
    public class UserMaterialTests(LoopFileSystems fs, ITestOutputHelper log)
    {
        [SkippableFact]
        public void AboutBtrfsTeachesTheModelAndItsCommandsRun()
        {
            PwshResult r = Pwsh.Run("Get-Help about_Btrfs | Out-Host", new Dictionary<string, object?>(), captureHost: true);
            Assert.Empty(r.Errors);
            string text = r.HostText;
            foreach (string section in new[] { "EXTENTS AND WHY THEY CAN BE LARGE", "COPY-ON-WRITE AND NOCOW", "REFLINKS AND THE NOCOW/COW CLONE RULE", "WHAT DEFRAGMENTATION DOES AND COSTS", "THE VM-IMAGE WORKFLOW", "TWO QUICK CHECKS" })
            {
                Assert.Contains(section, text, StringComparison.Ordinal);
            }

            foreach (string cmdlet in ManifestTests.ExportedCmdletNames())
            {
                Assert.Contains(cmdlet, text, StringComparison.Ordinal);
            }

            // Its prose fits 80 columns (a newcomer review: lines of 81); a command line is broken only after a pipe.
            Assert.All(File.ReadAllLines(Path.Combine(RepoPaths.Root, "en-US", "about_Btrfs.help.txt")).Where(l => !l.TrimStart().StartsWith("PS>", StringComparison.Ordinal) && !l.StartsWith("            ", StringComparison.Ordinal)), l => Assert.True(l.Length <= 80, l));

            // Every "PS>" line parses and runs whole in the fixture.
            var examples = new ExampleFixture(fs);
            // A "PS>" line that ends with a pipe goes on in the next line, as it would at the prompt.
            var commandList = new List<string>();
            string[] lines = File.ReadAllLines(Path.Combine(RepoPaths.Root, "en-US", "about_Btrfs.help.txt")).Select(l => l.Trim()).ToArray();
            for (int i = 0; i < lines.Length; i++)
            {
                if (lines[i].StartsWith("PS> ", StringComparison.Ordinal))
                {
                    string command = lines[i][4..];
                    while (command.EndsWith('|') && i + 1 < lines.Length)
                    {
                        command += " " + lines[++i];
                    }

                    commandList.Add(command);
                }
            }

            string[] commands = commandList.ToArray();
            Assert.Contains(commands, c => c.Contains("| Invoke-BtrfsDefrag -WhatIf", StringComparison.Ordinal));
            Assert.True(commands.Length >= 10, $"{commands.Length} commands");
            int ran = 0;
            foreach (string command in commands)
            {
                ScriptBlockAst ast = Parser.ParseInput(command, out _, out ParseError[] errors);
                Assert.True(errors.Length == 0, $"does not parse: {command}");
                examples.Run(ast, log, requireOutput: false); // Set-NoCow is silent by design
                ran++;
            }

            Assert.True(ran >= 10, $"only {ran} of {commands.Length} commands ran");
        }

        [SkippableFact]
        public void ThePesterTestOfAVmHostPassesOnAGoodHostAndFailsOnABadOne()
        {
            string dir = fs.NewDirectory(TestFs.Btrfs, "vmhost");
            string images = Directory.CreateDirectory(Path.Combine(dir, "images[1]")).FullName; // a pattern if read as one...
            string backups = Directory.CreateDirectory(Path.Combine(dir, "backups")).FullName;
            Shell.Run("chattr", "+C", images, backups);
            Directory.CreateDirectory(Path.Combine(dir, "images1")); // ...that matches this directory, whose image is COW
            FileBuilder.WriteNew(Path.Combine(dir, "images1", "decoy.img"), FileBuilder.RandomBytes(1 << 20, 9));
            foreach (string name in new[] { "web.img", "db.img" })
            {
                FileBuilder.WriteNew(Path.Combine(images, name), FileBuilder.RandomBytes(4 << 20, name.Length));
                Assert.Empty(Pwsh.Run("New-BtrfsReflink -LiteralPath $s -Destination $d | Out-Null", ("s", Path.Combine(images, name)), ("d", Path.Combine(backups, name))).Errors);
            }

            string testFile = Path.Combine(RepoPaths.Root, "examples", "VmHost.Tests.ps1");
            string run = """
                Import-Module $pester -ErrorAction Stop
                $c = New-PesterContainer -Path $file -Data @{ ImageDirectory = $images; BackupDirectory = $backups }
                (Invoke-Pester -Container $c -PassThru -Output None).Tests | ForEach-Object { '{0}|{1}|{2}' -f $_.ExpandedName, $_.Passed, ($_.ErrorRecord.Exception.Message -join ' ') }
                """;
            var vars = new Dictionary<string, object?> { ["file"] = testFile, ["images"] = images, ["backups"] = backups, ["pester"] = PesterModule("5.9.1") };
            PwshResult good = Pwsh.Run(run, vars);
            Assert.True(good.Errors.Count == 0, string.Join("\n", good.Errors));
            string[] lines = good.Output.Select(o => o.ToString()!).ToArray();
            Assert.Equal(3, lines.Length);
            Assert.All(lines, l => Assert.Contains("|True|", l, StringComparison.Ordinal));

            // A copy-on-write, fragmented image: the first two tests fail, naming it.
            string bad = Path.Combine(images, "bad.img");
            FileBuilder.Fragmented(Path.Combine(dir, "bad.img"), 4 << 20, 800); // written outside the NOCOW directory
            File.Move(Path.Combine(dir, "bad.img"), bad);
            Assert.False(FileFacts.HasNoCow(bad));
            lines = Pwsh.Run(run, vars).Output.Select(o => o.ToString()!).ToArray();
            Assert.Equal(3, lines.Length);
            Assert.Contains("|False|", lines[0], StringComparison.Ordinal);
            Assert.Contains("bad.img", lines[0], StringComparison.Ordinal);
            Assert.Contains("|False|", lines[1], StringComparison.Ordinal);
            Assert.Contains("bad.img", lines[1], StringComparison.Ordinal);
            Assert.Contains("|True|", lines[2], StringComparison.Ordinal);
        }

        /// <summary>Pester's module in the NuGet package the test project downloads (tools/Pester.psd1).</summary>
        internal static string PesterModule(string version)
        {
            string packages = Environment.GetEnvironmentVariable("NUGET_PACKAGES") is { Length: > 0 } p ? p : Path.Combine(Environment.GetEnvironmentVariable("HOME") ?? "/root", ".nuget", "packages");
            string module = Path.Combine(packages, "pester", version, "tools", "Pester.psd1");
            Requires.That(File.Exists(module), $"Pester {version} is not restored ({module}); dotnet restore of the test project downloads it");
            return module;
        }

        [SkippableTheory]
        [InlineData("5.9.1")]
        [InlineData("6.2.0")]
        public void ThePesterExampleFailsWhenThereIsNothingToCheckAndOnACopyOnWriteImage(string version)
        {
            // Before: with both directories missing it passed 3 of 3 (the errors were non-terminating).
            string dir = fs.NewDirectory(TestFs.Btrfs, "vmhost-pester");
            string images = Directory.CreateDirectory(Path.Combine(dir, "images")).FullName;
            string backups = Directory.CreateDirectory(Path.Combine(dir, "backups")).FullName;
            Shell.Run("chattr", "+C", images, backups);
            FileBuilder.WriteNew(Path.Combine(images, "web.img"), FileBuilder.RandomBytes(4 << 20, 4));
            Assert.Empty(Pwsh.Run("New-BtrfsReflink -LiteralPath $s -Destination $d | Out-Null", ("s", Path.Combine(images, "web.img")), ("d", Path.Combine(backups, "web.img"))).Errors);

            string script = """
                Import-Module $Pester -RequiredVersion $Version -ErrorAction Stop
                function Run($i, $b) {
                    $c = New-PesterContainer -Path $Example -Data @{ ImageDirectory = $i; BackupDirectory = $b }
                    $r = Invoke-Pester -Container $c -PassThru -Output None
                    '{0} {1}' -f $r.PassedCount, $r.FailedCount
                }
                Run $Images $Backups
                Run '/nonexistent/images' '/nonexistent/backups'
                Run $Empty $Empty
                """;
            string empty = Directory.CreateDirectory(Path.Combine(dir, "empty")).FullName;
            (string, string)[] vars =
            {
                ("Pester", PesterModule(version)), ("Version", version.Split('-')[0]), ("Example", Path.Combine(RepoPaths.Root, "examples", "VmHost.Tests.ps1")),
                ("Images", images), ("Backups", backups), ("Empty", empty),
            };
            RealPwsh.Result r = RealPwsh.Run(script, null, vars);
            Assert.True(r.ExitCode == 0, r.StdErr);
            Assert.Equal(new[] { "3 0", "0 3", "0 3" }, r.Lines.TakeLast(3).ToArray());

            // A copy-on-write image: the NOCOW test fails.
            FileBuilder.WriteNew(Path.Combine(dir, "cow.img"), FileBuilder.RandomBytes(1 << 20, 5));
            File.Move(Path.Combine(dir, "cow.img"), Path.Combine(images, "cow.img"));
            r = RealPwsh.Run(script, null, vars);
            Assert.True(r.ExitCode == 0, r.StdErr);
            Assert.Equal("2 1", r.Lines[^3]);
        }

        [SkippableFact]
        public void TheRunbookPreviewsDefragmentsOnlyWhatNeedsItAndLogsIt()
        {
            string top = fs.NewDirectory(TestFs.Btrfs, "runbook");
            string dir = Directory.CreateDirectory(Path.Combine(top, "vm[1]")).FullName; // a name that is a wildcard pattern
            string fragmented = Path.Combine(dir, "db.img"), fine = Path.Combine(dir, "web.img"), shared = Path.Combine(dir, "shared.img");
            byte[] content = FileBuilder.Fragmented(fragmented, 8 << 20, 1200);
            FileBuilder.WriteNew(fine, FileBuilder.RandomBytes(4 << 20, 5));
            FileBuilder.Fragmented(shared, 4 << 20, 600, seed: 6);
            Shell.Run("cp", "--reflink=always", shared, Path.Combine(top, "shared-backup.img")); // fragmented, but every extent shared
            Directory.CreateDirectory(Path.Combine(top, "vm1"));
            FileBuilder.Fragmented(Path.Combine(top, "vm1", "decoy.img"), 4 << 20, 600, seed: 7); // what 'vm[1]' would match as a pattern
            string link = Path.Combine(top, "images");
            Directory.CreateSymbolicLink(link, dir); // libvirt's image directory is often a link
            Shell.Run("sync");
            string fineLayout = Shell.Run("filefrag", "-v", fine);
            long before = Filefrag.Extents(fragmented).Count;

            string runbook = Path.Combine(RepoPaths.Root, "examples", "Invoke-VmImageMaintenance.ps1");
            string log = Path.Combine(top, "maintenance.csv");
            var vars = new Dictionary<string, object?> { ["runbook"] = runbook, ["dir"] = link, ["log"] = log };

            // Run by the real pwsh, as a runbook is: one preview per candidate (before: the module's, then
            // the runbook's own "Defragment (score 100)"), the shared one included (before: none under the
            // runbook's -WhatIf, which reaches the module as $WhatIfPreference), none for the image that
            // needs nothing, and the directory found through its link.
            RealPwsh.Result preview = RealPwsh.Run("& $Runbook -ImageDirectory $Dir -LogPath $Log -WhatIf", null, ("Runbook", runbook), ("Dir", link), ("Log", log));
            Assert.True(preview.ExitCode == 0 && preview.StdErr.Length == 0, preview.StdOut + preview.StdErr);
            string[] whatIf = preview.Lines.Where(l => l.StartsWith("What if:", StringComparison.Ordinal)).ToArray();
            Assert.True(whatIf.Length == 2, preview.StdOut);
            Assert.Contains(whatIf, l => l.Contains(fragmented, StringComparison.Ordinal) && l.Contains("in extents below 128 MiB (the longest extent the filesystem makes; 256 MiB was asked)", StringComparison.Ordinal));
            Assert.Contains(whatIf, l => l.Contains(shared, StringComparison.Ordinal) && l.Contains("Nothing to defragment", StringComparison.Ordinal));
            Assert.DoesNotContain(whatIf, l => l.Contains("decoy", StringComparison.Ordinal));
            Assert.False(File.Exists(log), "a preview wrote the log");
            Assert.Equal(before, Filefrag.Extents(fragmented).Count);

            PwshResult done = Pwsh.Run("& $runbook -ImageDirectory $dir -LogPath $log -Confirm:$false", vars);
            Assert.True(done.Errors.Count == 0, string.Join("\n", done.Errors));
            List<DefragResult> results = done.Objects<DefragResult>();
            Assert.Equal(new[] { fragmented, shared }.Order(StringComparer.Ordinal), results.Select(r => r.Path).Order(StringComparer.Ordinal));
            Assert.True(results.Single(r => r.Path == shared).Skipped);
            Assert.Equal(DefragSkipReason.Shared, results.Single(r => r.Path == shared).SkipReason); // only its sharing keeps it as it is

            // The log, read back by Import-Csv: a row per candidate, numbers as numbers.
            PwshResult logged = Pwsh.Run("Import-Csv -LiteralPath $log | Sort-Object Path | ForEach-Object { '{0}|{1}|{2}' -f $_.Path, $_.Method, ([long]$_.ExtentsBefore -gt [long]$_.ExtentsAfter) }", vars);
            Assert.Empty(logged.Errors);
            Assert.Contains($"{fragmented}|BtrfsDefragRange|True", logged.Output.Select(o => o.ToString()));
            Assert.True(Filefrag.Extents(fragmented).Count * 10 < before);
            Assert.Equal(Convert.ToHexString(System.Security.Cryptography.SHA256.HashData(content)), FileFacts.Hash(fragmented));
            Assert.Equal(fineLayout, Shell.Run("filefrag", "-v", fine));

            // A directory that is not there stops the runbook with an error, instead of checking nothing.
            PwshResult missing = Pwsh.Run("try { & $runbook -ImageDirectory (Join-Path $dir 'missing') -LogPath $log -WhatIf; 'went on' } catch { 'stopped: ' + $_.FullyQualifiedErrorId }", vars);
            Assert.StartsWith("stopped: PathNotFound", Assert.Single(missing.Output).ToString(), StringComparison.Ordinal);
        }

    }
}
