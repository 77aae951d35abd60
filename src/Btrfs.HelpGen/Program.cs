namespace Btrfs.HelpGen
{
    using System;
    using System.Collections.Generic;
    using System.IO;
    using System.Linq;
    using System.Reflection;

    /// <summary>
    /// Usage: Btrfs.HelpGen [--check] &lt;markdown-dir&gt; &lt;maml-file&gt; &lt;module-assembly&gt;
    /// Writes the MAML file from every *.md in the directory, the parameters' facts read from the cmdlets
    /// in the module assembly (bin/Btrfs.dll); with --check, only reports whether the file is up to date
    /// (exit 1 when it is not). Exit 3 when the markdown and the code disagree.
    /// </summary>
    public static class Program
    {
        public static string Generate(string markdownDirectory, Assembly module)
        {
            var commands = Directory.GetFiles(markdownDirectory, "*.md").OrderBy(f => f, StringComparer.Ordinal).Select(f => MarkdownHelpParser.Parse(File.ReadAllText(f))).ToList();
            List<string> problems = commands.SelectMany(c => CodeParameters.Apply(c, module)).ToList();
            var documented = commands.Select(c => c.Name).ToHashSet(StringComparer.Ordinal);
            problems.AddRange(module.GetTypes()
                .Select(t => t.GetCustomAttribute<System.Management.Automation.CmdletAttribute>())
                .Where(a => a is not null && !documented.Contains($"{a.VerbName}-{a.NounName}"))
                .Select(a => $"{a!.VerbName}-{a.NounName} has no help markdown"));
            if (problems.Count > 0)
            {
                throw new InvalidDataException("The help markdown and the code disagree:\n" + string.Join("\n", problems));
            }

            return MamlWriter.Write(commands);
        }

        public static int Main(string[] args)
        {
            bool check = args.Length > 0 && args[0] == "--check";
            string[] rest = check ? args[1..] : args;
            if (rest.Length != 3)
            {
                Console.Error.WriteLine("usage: Btrfs.HelpGen [--check] <markdown-dir> <maml-file> <module-assembly>");
                return 2;
            }

            string maml;
            try
            {
                maml = Generate(rest[0], Assembly.LoadFrom(Path.GetFullPath(rest[2])));
            }
            catch (InvalidDataException ex)
            {
                Console.Error.WriteLine(ex.Message);
                return 3;
            }

            if (check)
            {
                bool same = File.Exists(rest[1]) && File.ReadAllText(rest[1]) == maml;
                Console.WriteLine(same ? $"{rest[1]} is up to date" : $"{rest[1]} is stale: run build.ps1 -Task Help");
                return same ? 0 : 1;
            }

            File.WriteAllText(rest[1], maml);
            Console.WriteLine($"wrote {rest[1]}");
            return 0;
        }
    }
}
