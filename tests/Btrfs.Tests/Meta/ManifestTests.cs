namespace Btrfs.Tests
{
    using System;
    using System.Collections;
    using System.Collections.Generic;
    using System.IO;
    using System.Linq;
    using System.Management.Automation;
    using System.Management.Automation.Language;
    using Btrfs.Kernel;
    using Btrfs.Tests.Infrastructure;
    using Xunit;

    /// <summary>The manifest, as PowerShell reads it, and build.ps1, as PowerShell parses it.</summary>
    public class ManifestTests
    {
        internal static Hashtable Manifest()
        {
            var ast = Parser.ParseFile(RepoPaths.Manifest, out _, out ParseError[] errors);
            Assert.Empty(errors);
            var data = (HashtableAst)ast.Find(a => a is HashtableAst, false)!;
            return (Hashtable)data.SafeGetValue();
        }

        internal static string[] ExportedCmdletNames() => ((object[])Manifest()["CmdletsToExport"]!).Cast<string>().ToArray();

        [Fact]
        public void ManifestDeclaresWhatTheGalleryAndPwshNeed()
        {
            Hashtable m = Manifest();
            Assert.Equal("bin/Btrfs.dll", m["RootModule"]);
            Assert.Equal("7.4", m["PowerShellVersion"]);
            Assert.Equal(new object[] { "Core" }, (object[])m["CompatiblePSEditions"]!);
            Assert.True(Guid.TryParse((string)m["GUID"]!, out _));
            Assert.Equal(new object[] { "Btrfs.Format.ps1xml" }, (object[])m["FormatsToProcess"]!);
            Assert.Equal(new object[] { "Btrfs.Types.ps1xml" }, (object[])m["TypesToProcess"]!);
            Assert.DoesNotContain(ExportedCmdletNames(), n => n.Contains('*'));
            foreach (string key in new[] { "FunctionsToExport", "AliasesToExport", "VariablesToExport" })
            {
                Assert.Empty((object[])m[key]!);
            }

            var psData = (Hashtable)((Hashtable)m["PrivateData"]!)["PSData"]!;
            Assert.Equal(new[] { "Linux", "btrfs", "xfs", "ext4", "reflink", "nocow", "defrag", "dedupe", "fiemap", "filesystem", "storage", "PSEdition_Core" }, ((object[])psData["Tags"]!).Cast<string>());
            Assert.StartsWith("https://", (string)psData["ProjectUri"]!);
            Assert.Equal((string)psData["ProjectUri"]! + "/blob/main/LICENSE", (string)psData["LicenseUri"]!);
            Assert.True(File.Exists(Path.Combine(RepoPaths.Root, "LICENSE")));
            Assert.Contains("MIT License", File.ReadAllText(Path.Combine(RepoPaths.Root, "LICENSE")), StringComparison.Ordinal);

            // A gallery reader sees the description in one glance; the author is who wrote it, not a placeholder.
            Assert.InRange(((string)m["Description"]!).Length, 60, 250);
            Assert.DoesNotContain("Unknown", (string)m["CompanyName"]!, StringComparison.Ordinal);
            Assert.Contains("contributors", (string)m["Author"]!, StringComparison.Ordinal);
            Assert.False(string.IsNullOrWhiteSpace((string)psData["ReleaseNotes"]!));
            Assert.True(File.Exists(Path.Combine(RepoPaths.Root, (string)m["RootModule"]!)), "build first: dotnet build");
        }

        [Fact]
        public void ImportingTheManifestExposesExactlyTheExportedCmdlets()
        {
            PwshResult r = Pwsh.Run("$m = Get-Module Btrfs; $m.ModuleBase; $m.Version.ToString(); ($m.ExportedCmdlets.Keys | ForEach-Object { $_ }) -join ','; [Btrfs.Core.FileExtent].Assembly.Location");
            Assert.Empty(r.Errors);
            Assert.Equal(RepoPaths.Root, r.Output[0].ToString());
            Assert.Equal((string)Manifest()["ModuleVersion"]!, r.Output[1].ToString());
            Assert.Equal(ExportedCmdletNames().OrderBy(x => x), r.Output[2].ToString().Split(',').OrderBy(x => x));
            Assert.Equal(RepoPaths.ModuleAssembly, r.Output[3].ToString());
        }

        [Fact]
        public void ReleaseNotesFollowTheChangelogAndEveryOutputTypeHasAView()
        {
            Hashtable m = Manifest();
            string version = (string)m["ModuleVersion"]!;
            string changelog = File.ReadAllText(Path.Combine(RepoPaths.Root, "CHANGELOG.md"));
            string newest = System.Text.RegularExpressions.Regex.Match(changelog, @"^## \[(\d+\.\d+\.\d+)\]", System.Text.RegularExpressions.RegexOptions.Multiline).Groups[1].Value;
            Assert.Equal(newest, version);
            var psData = (Hashtable)((Hashtable)m["PrivateData"]!)["PSData"]!;
            Assert.StartsWith($"See CHANGELOG.md. {version}: ", (string)psData["ReleaseNotes"]!, StringComparison.Ordinal);

            string views = string.Concat(((object[])m["FormatsToProcess"]!).Select(f => File.ReadAllText(Path.Combine(RepoPaths.Root, (string)f))));
            PwshResult r = Pwsh.Run("Get-Command -Module Btrfs | ForEach-Object { $_.OutputType.Type } | Where-Object { $_.Namespace -eq 'Btrfs.Core' } | ForEach-Object FullName");
            Assert.NotEmpty(r.Output);
            Assert.All(r.Output.Select(o => o.ToString()).Distinct(), t => Assert.Contains($"<TypeName>{t}</TypeName>", views, StringComparison.Ordinal));
        }

        [Fact]
        public void TheModuleVersionMatchesTheAssemblyVersion()
        {
            Version assembly = typeof(Btrfs.Core.FileExtent).Assembly.GetName().Version!;
            Assert.Equal((string)Manifest()["ModuleVersion"]!, $"{assembly.Major}.{assembly.Minor}.{assembly.Build}");
        }

        [Fact]
        public void OutputTypesAreDeclared()
        {
            PwshResult r = Pwsh.Run("Get-Command -Module Btrfs | ForEach-Object { '{0}={1}' -f $_.Name, ($_.OutputType.Name -join ',') }");
            Assert.Empty(r.Errors);
            List<string> declared = r.Output.Select(o => o.ToString()).ToList();
            Assert.Contains("Get-BtrfsExtent=Btrfs.Core.FileExtent,Btrfs.Core.BtrfsExtentItem", declared);
            Assert.Contains("Measure-BtrfsUsage=Btrfs.Core.BtrfsFileUsage,Btrfs.Core.BtrfsUsageSummary,Btrfs.Core.BtrfsUsageRow", declared);
            Assert.Contains("Get-BtrfsExtentOwner=Btrfs.Core.BtrfsOwningFile,Btrfs.Core.BtrfsExtentOwner", declared);
            Assert.All(declared, d => Assert.False(d.EndsWith('=') , d + ": no OutputType"));
        }

        [Fact]
        public void NoAliasPropertyBindsToAParameterItDoesNotMean()
        {
            // Every parameter (and parameter alias) that takes a piped object's property by name...
            var byName = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
            foreach (Type t in typeof(Btrfs.Commands.FileCmdletBase).Assembly.GetTypes().Where(t => t.GetCustomAttributes(typeof(CmdletAttribute), false).Length > 0))
            {
                foreach (ParameterMetadata p in new CommandMetadata(t).Parameters.Values.Where(p => p.ParameterSets.Values.Any(s => s.ValueFromPipelineByPropertyName)))
                {
                    byName.Add(p.Name);
                    byName.UnionWith(p.Aliases);
                }
            }

            Assert.Contains("Offset", byName);

            // ...against every alias property of the output types: an alias with such a name must mean exactly that.
            var allowed = new HashSet<string> { "Btrfs.Core.BtrfsExtentOwner.Offset" }; // FileOffset of the owner's Path: the owner's own range
            var doc = System.Xml.Linq.XDocument.Load(Path.Combine(RepoPaths.Root, "Btrfs.Types.ps1xml"));
            var clashes = doc.Descendants("Type")
                .SelectMany(t => t.Descendants("AliasProperty").Select(a => (Type: t.Element("Name")!.Value.Replace("Deserialized.", string.Empty, StringComparison.Ordinal), Alias: a.Element("Name")!.Value)))
                .Where(x => byName.Contains(x.Alias) && !allowed.Contains(x.Type + "." + x.Alias))
                .Select(x => x.Type + "." + x.Alias)
                .Distinct()
                .ToList();
            Assert.True(clashes.Count == 0, "alias properties that would bind to a parameter by name: " + string.Join(", ", clashes));
        }

        [Fact]
        public void BuildScriptParsesWithoutErrors()
        {
            string script = Path.Combine(RepoPaths.Root, "build.ps1");
            ScriptBlockAst ast = Parser.ParseFile(script, out _, out ParseError[] errors);
            Assert.Empty(errors);
            var tasks = (ast.ParamBlock?.Parameters.Single(p => p.Name.VariablePath.UserPath == "Task").Attributes
                .OfType<AttributeAst>().Single(a => a.TypeName.Name == "ValidateSet").PositionalArguments
                .Cast<StringConstantExpressionAst>().Select(s => s.Value)) ?? Array.Empty<string>();
            Assert.Equal(new[] { "Build", "Test", "Help", "Package" }, tasks);
        }

        /// <summary>
        /// Every table view fits a console 80 columns wide, which gives a table 79 (the host keeps the last column free):
        /// its fixed widths, a space between columns, and the width its wrapped column is wrapped to (before: two views
        /// wrapped for 80, and a message broke inside a word in an 80-column terminal; a hostile review on a pty).
        /// </summary>
        [Fact]
        public void EveryTableViewFitsAConsoleEightyColumnsWide()
        {
            var doc = System.Xml.Linq.XDocument.Load(System.IO.Path.Combine(RepoPaths.Root, "Btrfs.Format.ps1xml"));
            int tables = 0;
            foreach (var table in doc.Descendants("TableControl"))
            {
                string view = table.Parent!.Element("Name")!.Value;
                var headers = table.Element("TableHeaders")!.Elements("TableColumnHeader").ToList();
                foreach (var entry in table.Descendants("TableRowEntry"))
                {
                    var items = entry.Element("TableColumnItems")!.Elements("TableColumnItem").ToList();
                    Assert.Equal(headers.Count, items.Count);
                    int used = headers.Count - 1;
                    for (int i = 0; i < headers.Count; i++)
                    {
                        var wrap = System.Text.RegularExpressions.Regex.Match(items[i].Value, @"TextLayout\]::Wrap(?:Name)?\(.*,\s*(\d+)\)\s*$", System.Text.RegularExpressions.RegexOptions.Singleline);
                        Assert.True(wrap.Success || !items[i].Value.Contains("::Wrap", StringComparison.Ordinal), $"{view}: column {i} wraps in a way this test cannot read: {items[i].Value}");
                        if (headers[i].Element("Width") is { } w)
                        {
                            int width = int.Parse(w.Value, System.Globalization.CultureInfo.InvariantCulture);
                            Assert.True(!wrap.Success || int.Parse(wrap.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture) <= width, $"{view}: column {i} wraps wider than its {width}");
                            used += width;
                        }
                        else if (wrap.Success)
                        {
                            used += int.Parse(wrap.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture);
                        }
                        else
                        {
                            // A column of no width takes what is left: only the last may (its text wraps at the edge).
                            Assert.True(i == headers.Count - 1, $"{view}: column {i} has no width and is not the last");
                        }
                    }

                    Assert.True(used <= 79, $"{view}: {used} columns");
                }

                tables++;
            }

            Assert.True(tables >= 15, $"{tables} table views");
        }
    }
}
