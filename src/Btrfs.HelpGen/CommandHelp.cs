namespace Btrfs.HelpGen
{
    using System.Collections.Generic;

    /// <summary>One cmdlet's help, as read from a platyPS markdown file.</summary>
    public sealed class CommandHelp
    {
        public string Name { get; set; } = string.Empty;

        public string Synopsis { get; set; } = string.Empty;

        /// <summary>The front matter's "online version": written as the first related link, the one Get-Help -Online opens.</summary>
        public string OnlineVersion { get; set; } = string.Empty;

        public List<string> Description { get; } = new();

        /// <summary>Parameter set names in SYNTAX order; the default set carries "(Default)" in markdown.</summary>
        public List<string> ParameterSets { get; } = new();

        /// <summary>Each set's SYNTAX line as written in the markdown (for readers of the page; checked against the code).</summary>
        public Dictionary<string, string> SyntaxLines { get; } = new();

        public List<ExampleHelp> Examples { get; } = new();

        public List<ParameterHelp> Parameters { get; } = new();

        public List<TypeHelp> Inputs { get; } = new();

        public List<TypeHelp> Outputs { get; } = new();

        public List<string> Notes { get; } = new();

        public List<(string Text, string Uri)> Links { get; } = new();
    }

    public sealed class ExampleHelp
    {
        public string Title { get; set; } = string.Empty;

        public string Code { get; set; } = string.Empty;

        public List<string> Remarks { get; } = new();
    }

    public sealed class ParameterHelp
    {
        public string Name { get; set; } = string.Empty;

        public List<string> Description { get; } = new();

        public string Type { get; set; } = string.Empty;

        /// <summary>Set names, or empty for "(All)".</summary>
        public List<string> Sets { get; } = new();

        public List<string> Aliases { get; } = new();

        public bool Required { get; set; }

        public string Position { get; set; } = "Named";

        public string DefaultValue { get; set; } = "None";

        public string PipelineInput { get; set; } = "False";

        public bool Globbing { get; set; }

        public bool IsSwitch => Type == "SwitchParameter";

        public bool InSet(string set) => Sets.Count == 0 || Sets.Contains(set);
    }

    public sealed class TypeHelp
    {
        public string Name { get; set; } = string.Empty;

        public List<string> Description { get; } = new();
    }
}
