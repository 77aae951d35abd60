namespace Btrfs.HelpGen
{
    using System;
    using System.IO;
    using System.Linq;

    /// <summary>
    /// Usage: Btrfs.HelpGen [--check] &lt;markdown-dir&gt; &lt;maml-file&gt;
    /// Writes the MAML file from every *.md in the directory; with --check, only reports whether the
    /// file is up to date (exit 1 when it is not).
    /// </summary>
    public static class Program
    {
        public static string Generate(string markdownDirectory) =>
            MamlWriter.Write(Directory.GetFiles(markdownDirectory, "*.md").OrderBy(f => f, StringComparer.Ordinal).Select(f => MarkdownHelpParser.Parse(File.ReadAllText(f))));

        public static int Main(string[] args)
        {
            bool check = args.Length > 0 && args[0] == "--check";
            string[] rest = check ? args[1..] : args;
            if (rest.Length != 2)
            {
                Console.Error.WriteLine("usage: Btrfs.HelpGen [--check] <markdown-dir> <maml-file>");
                return 2;
            }

            string maml = Generate(rest[0]);
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
