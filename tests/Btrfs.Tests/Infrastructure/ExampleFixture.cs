namespace Btrfs.Tests.Infrastructure
{
    using System;
    using System.Collections.Generic;
    using System.IO;
    using System.Linq;
    using System.Management.Automation.Language;
    using Xunit;
    using Xunit.Abstractions;

    /// <summary>
    /// Runs what users copy (help examples, about_Btrfs, examples/) against the loop filesystems: a
    /// directory with the files the examples name (./vm.img with a reflink ./vm-clone.img and a plain
    /// copy ./vm-copy.img, ./sparse.img, ./db.sqlite, ./images, ./db, ./logs, ./backups, ./templates),
    /// the absolute host paths the examples use mapped to it, and each example run as far as this host
    /// has its commands.
    /// </summary>
    internal sealed class ExampleFixture
    {
        private static readonly Lazy<HashSet<string>> HostCommands = new(() =>
            Pwsh.Run("Get-Command | ForEach-Object Name").Output.Select(o => o.ToString()).ToHashSet(StringComparer.OrdinalIgnoreCase));

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
            FileBuilder.Chunks(Path.Combine(Dir, "db", "data.img"), 8, 64 * 1024, 128 * 1024);
            FileBuilder.WriteNew(Path.Combine(Dir, "logs", "syslog"), FileBuilder.Text(256 * 1024));
            FileBuilder.Chunks(Path.Combine(Dir, "templates", "base.img"), 2, 1 << 20, 1 << 20, seed: 7);
            FileBuilder.Chunks(Path.Combine(Dir, "templates", "base-copy.img"), 2, 1 << 20, 1 << 20, seed: 7);
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
                ("/swap/swapfile 8GB", "./swap-host 64MB"), // a host-sized swapfile, fixture-sized
            };
        }

        /// <summary>The directory the examples run in.</summary>
        internal string Dir { get; }

        /// <summary>Whether every command <paramref name="ast"/> uses exists in this host.</summary>
        internal static bool Available(Ast ast) =>
            ast.FindAll(a => a is CommandAst, true).Cast<CommandAst>().All(c => c.GetCommandName() is string n && HostCommands.Value.Contains(n));

        /// <summary>
        /// The part of a script this host can run: its statements up to the first that uses a command the
        /// host lacks (Export-Csv, Sort-Object, Get-ChildItem, Pester's It...), and of that statement, when it
        /// is a pipeline, the commands before that one. Whole: nothing was cut.
        /// </summary>
        internal static (string Script, bool Whole) RunnablePart(ScriptBlockAst ast)
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

        /// <summary>
        /// Runs the runnable part of an example in <see cref="Dir"/>, host paths mapped, and checks it: no
        /// errors, and (when <paramref name="requireOutput"/>) output unless it previews (-WhatIf). Null
        /// when none of it can run here.
        /// </summary>
        internal PwshResult? RunRunnablePart(ScriptBlockAst ast, ITestOutputHelper log, bool requireOutput = true)
        {
            (string runnable, bool whole) = RunnablePart(ast);
            if (runnable.Length == 0)
            {
                log.WriteLine($"parsed only (its first command is not in this host): {ast.Extent.Text}");
                return null;
            }

            if (!whole)
            {
                log.WriteLine($"run up to the first command this host lacks: {runnable}");
            }

            string script = MapHostPaths(runnable);

            // Set-Location lives in Microsoft.PowerShell.Management, which this host lacks.
            PwshResult r = Pwsh.Run($"$null = $ExecutionContext.SessionState.Path.SetLocation($dir)\n{script}", ("dir", Dir));
            Assert.True(r.Errors.Count == 0, $"example failed: {script}\n{string.Join("\n", r.Errors)}");
            if (requireOutput && !script.Contains("-WhatIf", StringComparison.Ordinal))
            {
                Assert.True(r.Output.Count > 0, $"example produced nothing: {script}");
            }

            return r;
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
