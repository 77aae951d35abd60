namespace Btrfs.HelpGen
{
    using System;
    using System.Collections.Generic;
    using System.IO;
    using System.Linq;
    using System.Text;
    using System.Xml;
    using System.Xml.Linq;

    /// <summary>Writes MAML the way platyPS does, which Get-Help reads for binary modules.</summary>
    public static class MamlWriter
    {
        private static readonly XNamespace Msh = "http://msh";
        private static readonly XNamespace Maml = "http://schemas.microsoft.com/maml/2004/10";
        private static readonly XNamespace Command = "http://schemas.microsoft.com/maml/dev/command/2004/10";
        private static readonly XNamespace Dev = "http://schemas.microsoft.com/maml/dev/2004/10";

        public static string Write(IEnumerable<CommandHelp> commands)
        {
            var root = new XElement(
                Msh + "helpItems",
                new XAttribute("schema", "maml"),
                new XAttribute(XNamespace.Xmlns + "maml", Maml),
                new XAttribute(XNamespace.Xmlns + "command", Command),
                new XAttribute(XNamespace.Xmlns + "dev", Dev),
                commands.OrderBy(c => c.Name, System.StringComparer.Ordinal).Select(CommandElement));
            var settings = new XmlWriterSettings { Indent = true, IndentChars = "  ", Encoding = new UTF8Encoding(false), NewLineChars = "\n" };
            using var stream = new MemoryStream();
            using (var writer = XmlWriter.Create(stream, settings))
            {
                new XDocument(new XDeclaration("1.0", "utf-8", null), root).Save(writer);
            }

            return Encoding.UTF8.GetString(stream.ToArray()) + "\n";
        }

        private static XElement CommandElement(CommandHelp c)
        {
            string[] verbNoun = c.Name.Split('-', 2);
            return new XElement(
                Command + "command",
                new XElement(
                    Command + "details",
                    new XElement(Command + "name", c.Name),
                    new XElement(Command + "verb", verbNoun[0]),
                    new XElement(Command + "noun", verbNoun.Length > 1 ? verbNoun[1] : string.Empty),
                    Description(new[] { c.Synopsis })),
                Description(c.Description),
                new XElement(Command + "syntax", c.ParameterSets.Select(set => SyntaxItem(c, set))),
                new XElement(Command + "parameters", c.Parameters.Select(p => Parameter(p, null))),
                new XElement(Command + "inputTypes", c.Inputs.Select(t => new XElement(Command + "inputType", TypeElement(t.Name), Description(t.Description)))),
                new XElement(Command + "returnValues", c.Outputs.Select(t => new XElement(Command + "returnValue", TypeElement(t.Name), Description(t.Description)))),
                new XElement(Maml + "alertSet", new XElement(Maml + "alert", c.Notes.Select(Para))),
                new XElement(
                    Command + "examples",
                    c.Examples.Select(e => new XElement(
                        Command + "example",
                        new XElement(Maml + "title", $"-------------------------- {e.Title} --------------------------"),
                        new XElement(Dev + "code", e.Code),
                        new XElement(Dev + "remarks", e.Remarks.Select(Para))))),
                new XElement(
                    Command + "relatedLinks",
                    (c.OnlineVersion.Length > 0 ? new[] { ("Online Version:", c.OnlineVersion) } : Array.Empty<(string, string)>()).Concat(c.Links)
                        .Select(l => new XElement(Maml + "navigationLink", new XElement(Maml + "linkText", l.Item1), new XElement(Maml + "uri", l.Item2)))));
        }

        private static XElement SyntaxItem(CommandHelp c, string set) =>
            new(
                Command + "syntaxItem",
                new XElement(Maml + "name", c.Name),
                c.Parameters.Where(p => p.InSet(set)).Select(p => Parameter(p, set)));

        private static XElement Parameter(ParameterHelp p, string? set)
        {
            var e = new XElement(
                Command + "parameter",
                new XAttribute("required", p.Required ? "true" : "false"),
                new XAttribute("variableLength", "true"),
                new XAttribute("globbing", p.Globbing ? "true" : "false"),
                new XAttribute("pipelineInput", p.PipelineInput),
                new XAttribute("position", p.Position.ToLowerInvariant() == "named" ? "named" : p.Position),
                new XAttribute("aliases", p.Aliases.Count == 0 ? "none" : string.Join(", ", p.Aliases)),
                new XElement(Maml + "name", p.Name),
                Description(p.Description));
            if (!p.IsSwitch || set is null)
            {
                e.Add(new XElement(Command + "parameterValue", new XAttribute("required", p.IsSwitch ? "false" : "true"), new XAttribute("variableLength", "false"), p.Type));
            }

            e.Add(TypeElement(p.Type));
            e.Add(new XElement(Dev + "defaultValue", p.DefaultValue));
            return e;
        }

        private static XElement TypeElement(string name) => new(Dev + "type", new XElement(Maml + "name", name), new XElement(Maml + "uri"));

        private static XElement Description(IEnumerable<string> paragraphs) => new(Maml + "description", paragraphs.Select(Para));

        private static XElement Para(string text) => new(Maml + "para", text);
    }
}
