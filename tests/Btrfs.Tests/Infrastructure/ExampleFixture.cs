namespace Btrfs.Tests.Infrastructure
{
    using System;
    using System.Collections.Generic;
    using System.IO;
    using System.Linq;
    using System.Management.Automation.Language;
    using Btrfs.Kernel;
    using Xunit;
    using Xunit.Abstractions;

    /// <summary>
    /// Runs what users copy (help examples, about_Btrfs, examples/) against the loop filesystems: a
    /// directory with the files the examples name (./vm.img with a reflink ./vm-clone.img and a plain
    /// copy ./vm-copy.img, ./sparse.img, ./db.sqlite, ./images, ./db, ./logs, ./backups, ./templates),
    /// the absolute host paths the examples use mapped to it, and each example run whole.
    /// </summary>
    internal sealed class ExampleFixture
    {
        private readonly (string From, string To)[] hostPaths;

        internal ExampleFixture(LoopFileSystems fs)
        {
            Dir = fs.NewDirectory(TestFs.Btrfs, "examples");
            string xfsDir = fs.NewDirectory(TestFs.Xfs, "examples");
            string ext4Dir = fs.NewDirectory(TestFs.Ext4, "examples");
            FileBuilder.Chunks(Path.Combine(xfsDir, "vm.img"), 4, 64 * 1024, 64 * 1024);
            FileBuilder.Chunks(Path.Combine(ext4Dir, "db.img"), 4, 64 * 1024, 64 * 1024);
            foreach (string sub in new[] { "db", "logs", "backups", "templates", "images" })
            {
                Directory.CreateDirectory(Path.Combine(Dir, sub));
            }

            // The active images live in a NOCOW directory, as the examples advise (their Pester checks assert it).
            Shell.Run("chattr", "+C", Path.Combine(Dir, "images"));

            FileBuilder.Chunks(Path.Combine(Dir, "vm.img"), 6, 64 * 1024, 128 * 1024);
            Shell.Run("cp", "--reflink=always", Path.Combine(Dir, "vm.img"), Path.Combine(Dir, "vm-clone.img"));
            Shell.Run("cp", "--reflink=never", Path.Combine(Dir, "vm.img"), Path.Combine(Dir, "vm-copy.img"));
            FileBuilder.Sparse(Path.Combine(Dir, "sparse.img"), 1 << 20);
            FileBuilder.WriteAt(Path.Combine(Dir, "sparse.img"), 4096, FileBuilder.RandomBytes(4096, 1));
            FileBuilder.Chunks(Path.Combine(Dir, "db.sqlite"), 8, 16 * 1024, 256 * 1024, fsyncEach: false);
            FileBuilder.Chunks(Path.Combine(Dir, "images", "old.img"), 2, 64 * 1024, 64 * 1024);
            FileBuilder.Chunks(Path.Combine(Dir, "images", "vm.img"), 6, 64 * 1024, 128 * 1024);
            FileBuilder.Chunks(Path.Combine(Dir, "images", "template.img"), 2, 1 << 20, 1 << 20, seed: 8);
            FileBuilder.Chunks(Path.Combine(Dir, "images", "vm1.img"), 2, 1 << 20, 1 << 20, seed: 8);
            FileBuilder.WriteNew(Path.Combine(Dir, "images", "new.img"), Array.Empty<byte>());
            FileBuilder.WriteNew(Path.Combine(Dir, "db", "data.img"), FileBuilder.RandomBytes(4 << 20, 12)); // one piece: large extents
            FileBuilder.WriteNew(Path.Combine(Dir, "logs", "syslog"), FileBuilder.Text(256 * 1024));
            FileBuilder.Chunks(Path.Combine(Dir, "templates", "base.img"), 2, 1 << 20, 1 << 20, seed: 7);
            FileBuilder.Chunks(Path.Combine(Dir, "templates", "base-copy.img"), 2, 1 << 20, 1 << 20, seed: 7);

            // A subvolume of images with read-only snapshots of it, as the snapshot examples keep them.
            Shell.Run("btrfs", "subvolume", "create", Path.Combine(Dir, "vms"));
            FileBuilder.Chunks(Path.Combine(Dir, "vms", "vm.img"), 2, 1 << 20, 1 << 20, seed: 9);
            Directory.CreateDirectory(Path.Combine(Dir, "snapshots"));
            Shell.Run("btrfs", "subvolume", "snapshot", "-r", Path.Combine(Dir, "vms"), Path.Combine(Dir, "snapshots", "vms-1"));
            FileBuilder.WriteAt(Path.Combine(Dir, "vms", "vm.img"), 0, FileBuilder.RandomBytes(64 << 10, 10));
            Shell.Run("btrfs", "subvolume", "snapshot", "-r", Path.Combine(Dir, "vms"), Path.Combine(Dir, "snapshots", "vms-2"));
            hostPaths = new[]
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
                ("/etc/fstab", "./fstab"), // never the host's
                ("/swap/swapfile 8GB", "./swap-host 64MB"), // a host-sized swapfile, fixture-sized
                ("/swap/swapfile", "./swap-host"),
                ("/swap/old-swapfile", "./old-swapfile"),
                ("/srv/nocow/", "./nocow/"),
                ("/srv/vms", "./vms"),
                ("/srv/snapshots", "./snapshots"),
            };
        }

        /// <summary>The directory the examples run in.</summary>
        internal string Dir { get; }

        /// <summary>
        /// Runs an example whole in <see cref="Dir"/>, host paths mapped, on the full SDK (every command
        /// users have), and checks it: no errors, and (when <paramref name="requireOutput"/>) output
        /// unless it previews (-WhatIf) or writes its result to a file (Export-Csv, Out-File, Set-Content,
        /// a redirection), in which case that file must exist and hold something. Prompts are off
        /// ($ConfirmPreference = 'None'), as a user who answers "Yes" would have it.
        /// </summary>
        internal PwshResult Run(ScriptBlockAst ast, ITestOutputHelper log, bool requireOutput = true) => Run(ast, log, requireOutput, expectError: false);

        /// <summary>As <see cref="Run(ScriptBlockAst, ITestOutputHelper, bool)"/>; with <paramref name="expectError"/> the example must fail (it shows an error on purpose), and is returned as it ran.</summary>
        internal PwshResult Run(ScriptBlockAst ast, ITestOutputHelper log, bool requireOutput, bool expectError)
        {
            string script = MapHostPaths(ast.Extent.Text);
            log.WriteLine("ran: " + script);
            string prelude = "Set-Location -LiteralPath $dir\n$ConfirmPreference = 'None'\n";
            bool pester = ast.Find(a => a is CommandAst c && c.GetCommandName() is "Describe" or "It" or "Should", true) is not null;
            if (pester)
            {
                // Pester as users have it (5.9.1 from its NuGet package); a Describe block runs under Invoke-Pester.
                prelude += "Import-Module $pester -ErrorAction Stop\n";
            }

            bool describe = ast.Find(a => a is CommandAst c && c.GetCommandName() == "Describe", true) is not null;
            string run = describe
                ? prelude + "$r = Invoke-Pester -Container (New-PesterContainer -ScriptBlock ([scriptblock]::Create($example))) -PassThru -Output None\n'{0} {1}' -f $r.PassedCount, $r.FailedCount"
                : prelude + TeeBeforeFilter(script);
            PwshResult r = Pwsh.Run(run, ("dir", Dir), ("pester", pester ? UserMaterialTests.PesterModule("5.9.1") : null), ("example", script));
            if (expectError)
            {
                Assert.True(r.Errors.Count > 0, $"example shows an error but ran without one: {script}");
                return r;
            }

            Assert.True(r.Errors.Count == 0, $"example failed: {script}\n{string.Join("\n", r.Errors)}");
            if (describe)
            {
                string counts = Assert.Single(r.Output).ToString()!;
                Assert.True(counts.EndsWith(" 0", StringComparison.Ordinal) && !counts.StartsWith("0 ", StringComparison.Ordinal), $"Pester example: {counts} (passed failed): {script}");
                return r;
            }
            if (!requireOutput || script.Contains("-WhatIf", StringComparison.Ordinal))
            {
                return r;
            }

            string? file = WrittenFile(Parser.ParseInput(script, out _, out _));
            if (file is not null)
            {
                string full = Path.Combine(Dir, file);
                Assert.True(File.Exists(full) && new FileInfo(full).Length > 0, $"example wrote nothing to {file}: {script}");
                return r;
            }

            if (r.Output.Count == 0 && r.Warnings.LastOrDefault()?.Message is string tee && tee.StartsWith("unfiltered=", StringComparison.Ordinal))
            {
                // A filter that matched nothing here: what it filtered must have been something.
                Assert.True(tee != "unfiltered=0", $"example produced nothing, and neither did what it filters: {script}");
                return r;
            }

            Assert.True(r.Output.Count > 0, $"example produced nothing: {script}");
            return r;
        }

        /// <summary>
        /// The script with what its last pipeline feeds into Where-Object kept (Tee-Object) and counted
        /// in a final warning, "unfiltered=N": a filter that matches nothing in the fixture must still
        /// have had something to filter.
        /// </summary>
        private static string TeeBeforeFilter(string script)
        {
            if (Parser.ParseInput(script, out _, out _).EndBlock?.Statements.LastOrDefault() is PipelineAst { PipelineElements.Count: > 1 } last
                && last.PipelineElements.Skip(1).FirstOrDefault(e => e is CommandAst c && c.GetCommandName() is "Where-Object" or "where" or "?") is CommandBaseAst filter)
            {
                int at = filter.Extent.StartOffset;
                return script[..at] + "Tee-Object -Variable __unfiltered | " + script[at..] + "\nWrite-Warning \"unfiltered=$(@($__unfiltered).Count)\"";
            }

            return script;
        }

        /// <summary>The file an example writes its result to (Export-Csv, Out-File, Set-Content, or a redirection), if any.</summary>
        private static string? WrittenFile(ScriptBlockAst ast)
        {
            foreach (CommandAst c in ast.FindAll(a => a is CommandAst, true).Cast<CommandAst>())
            {
                if (c.Redirections.OfType<FileRedirectionAst>().FirstOrDefault() is { Location: StringConstantExpressionAst target })
                {
                    return target.Value;
                }

                if (c.GetCommandName() is "Export-Csv" or "Out-File" or "Set-Content")
                {
                    var elements = c.CommandElements.ToList();
                    for (int i = 1; i < elements.Count; i++)
                    {
                        if (elements[i] is CommandParameterAst { ParameterName: "Path" or "LiteralPath" or "FilePath" } && i + 1 < elements.Count && elements[i + 1] is StringConstantExpressionAst named)
                        {
                            return named.Value;
                        }

                        if (elements[i] is StringConstantExpressionAst positional && elements[i - 1] is not CommandParameterAst)
                        {
                            return positional.Value;
                        }
                    }
                }
            }

            return null;
        }

        internal string MapHostPaths(string script)
        {
            foreach ((string from, string to) in hostPaths)
            {
                script = script.Replace(from, to, StringComparison.Ordinal);
            }

            return script;
        }
    }
}
