namespace Btrfs.Tests
{
    using System;
    using System.Collections.Generic;
    using System.IO;
    using System.Linq;
    using System.Management.Automation.Language;
    using Btrfs.Kernel;
    using Btrfs.Tests.Infrastructure;
    using Xunit;
    using Xunit.Abstractions;

    /// <summary>README's session commands ("PS>" lines), run whole in a fixture that has the files they name.</summary>
    [Collection(FileSystemCollection.Name)]
    public class ReadmeTests(LoopFileSystems fs, ITestOutputHelper log)
    {
        /// <summary>One "PS>" command of README (continued on ">>" lines), and what README shows after it.</summary>
        internal sealed record SessionCommand(string Text, string[] Shown)
        {
            /// <summary>README shows an error ("Cmdlet-Name: message") after it.</summary>
            internal string? ShownError => Shown.FirstOrDefault(l => System.Text.RegularExpressions.Regex.IsMatch(l, @"^[A-Z][a-z]+-[A-Za-z]+: "));

            internal bool ShowsWarning => Shown.Any(l => l.StartsWith("WARNING: ", StringComparison.Ordinal));
        }

        internal static List<SessionCommand> SessionCommands()
        {
            string[] lines = File.ReadAllLines(Path.Combine(RepoPaths.Root, "README.md"));
            var commands = new List<SessionCommand>();
            bool inPowerShell = false;
            string? current = null;
            var shown = new List<string>();
            void Flush()
            {
                if (current is not null)
                {
                    commands.Add(new SessionCommand(current, shown.ToArray()));
                }

                current = null;
                shown.Clear();
            }

            foreach (string line in lines)
            {
                if (line.StartsWith("```", StringComparison.Ordinal))
                {
                    Flush();
                    inPowerShell = !inPowerShell && line.Trim() == "```powershell";
                    continue;
                }

                if (!inPowerShell)
                {
                    continue;
                }

                if (line.StartsWith("PS> ", StringComparison.Ordinal))
                {
                    Flush();
                    string text = line[4..];
                    if (!text.TrimStart().StartsWith('#'))
                    {
                        current = text;
                    }
                }
                else if (line.StartsWith(">> ", StringComparison.Ordinal) && current is not null)
                {
                    current += "\n" + line[3..];
                }
                else if (current is not null)
                {
                    shown.Add(line);
                }
            }

            return commands;
        }

        [SkippableFact]
        public void EverySessionCommandRunsWholeAndShowsWhatReadmeSays()
        {
            var examples = new ExampleFixture(fs);
            string dir = examples.Dir;
            try
            {
                // The files README's sessions name, beside those of the help examples (README's sessions run in /srv/vm).
                ShowExtentMapTests.Layout(dir);
                string images = Path.Combine(dir, "images"); // NOCOW, from the help examples' fixture
                FileBuilder.Chunks(Path.Combine(images, "web.img"), 4, 1 << 20, 1 << 20, seed: 4);
                Shell.Run("cp", "--reflink=always", Path.Combine(images, "web.img"), Path.Combine(images, "web-backup.img"));
                FileBuilder.Chunks(Path.Combine(images, "vm2.img"), 2, 1 << 20, 1 << 20, seed: 8);
                FileBuilder.WriteNew(Path.Combine(dir, "db.qcow2"), FileBuilder.RandomBytes(1 << 20, 6));
                File.Move(Path.Combine(dir, "db.qcow2"), Path.Combine(images, "db.qcow2")); // made before the directory was NOCOW
                string vms = Directory.CreateDirectory(Path.Combine(dir, "vms")).FullName;
                FileBuilder.Fragmented(Path.Combine(vms, "db.img"), 8 << 20, 1000);
                FileBuilder.Fragmented(Path.Combine(vms, "web.img"), 4 << 20, 500, seed: 4);
                Shell.Run("cp", "--reflink=always", Path.Combine(vms, "web.img"), Path.Combine(vms, "web-backup.img"));
                FileBuilder.WriteAt(Path.Combine(vms, "web.img"), 1 << 20, FileBuilder.RandomBytes(128 << 10, 5)); // rewritten since the backup
                string nocow = Directory.CreateDirectory(Path.Combine(dir, "nocow")).FullName;
                Shell.Run("chattr", "+C", nocow);
                FileBuilder.Chunks(Path.Combine(nocow, "vm.img"), 2, 1 << 20, 1 << 20, seed: 10);
                FileBuilder.WriteNew(Path.Combine(dir, "backups", "old.img"), FileBuilder.RandomBytes(1 << 20, 11));
                FileBuilder.WriteNew(Path.Combine(dir, "old-swapfile"), FileBuilder.RandomBytes(1 << 20, 12));
                Shell.Run("sync");

                List<SessionCommand> commands = SessionCommands();
                Assert.True(commands.Count >= 25, $"{commands.Count} commands");
                foreach (SessionCommand c in commands.Where(c => !c.Text.StartsWith("Import-Module ", StringComparison.Ordinal)))
                {
                    ScriptBlockAst ast = Parser.ParseInput(c.Text, out _, out ParseError[] errors);
                    Assert.True(errors.Length == 0, $"does not parse: {c.Text}");
                    PwshResult r = examples.Run(ast, log, requireOutput: false, expectError: c.ShownError is not null);
                    if (c.ShownError is string shown)
                    {
                        // The same error, up to the first path README made up.
                        string message = shown[(shown.IndexOf(": ", StringComparison.Ordinal) + 2)..];
                        string words = message[..message.IndexOf('\'', StringComparison.Ordinal)];
                        Assert.StartsWith(words, r.Errors[0].Exception.Message, StringComparison.Ordinal);
                    }

                    if (c.ShowsWarning)
                    {
                        Assert.True(r.Warnings.Count > 0, $"README shows a warning: {c.Text}");
                    }
                }
            }
            finally
            {
                LoopFileSystems.SwapOffUnder(dir);
            }
        }
    }
}
