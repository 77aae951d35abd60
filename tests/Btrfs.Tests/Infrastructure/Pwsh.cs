namespace Btrfs.Tests.Infrastructure
{
    using System;
    using System.Collections.Generic;
    using System.Collections.ObjectModel;
    using System.Linq;
    using System.Management.Automation;
    using System.Management.Automation.Host;
    using System.Management.Automation.Runspaces;
    using Btrfs.Kernel;

    /// <summary>What one script run produced.</summary>
    internal sealed class PwshResult
    {
        public required Collection<PSObject> Output { get; init; }

        public required IReadOnlyList<ErrorRecord> Errors { get; init; }

        public required IReadOnlyList<ProgressRecord> Progress { get; init; }

        public required IReadOnlyList<WarningRecord> Warnings { get; init; }

        public required IReadOnlyList<VerboseRecord> Verbose { get; init; }

        public string HostText { get; init; } = string.Empty;

        /// <summary>The pipeline was stopped (as by Ctrl+C) before it finished.</summary>
        public bool Stopped { get; init; }

        /// <summary>The output's base objects of type T (all of them must be T).</summary>
        public List<T> Objects<T>() => Output.Select(o => Assert<T>(o.BaseObject)).ToList();

        /// <summary>The error ids ("PathNotFound"), without the ",Btrfs.Commands.X" suffix.</summary>
        public List<string> ErrorIds => Errors.Select(e => e.FullyQualifiedErrorId.Split(',')[0]).ToList();

        private static T Assert<T>(object o) => o is T t ? t : throw new InvalidCastException($"expected {typeof(T)}, got {o?.GetType()}");
    }

    /// <summary>
    /// Hosts PowerShell in-process with the module imported through Btrfs.psd1. The session state is
    /// built once; each run gets its own runspace, executed on the calling thread (so a test can
    /// change its own thread's credentials around a run).
    /// </summary>
    internal static class Pwsh
    {
        private static readonly Lazy<InitialSessionState> Iss = new(() =>
        {
            var iss = InitialSessionState.CreateDefault2();
            iss.ImportPSModule(RepoPaths.Manifest);
            return iss;
        });

        private static readonly System.Management.Automation.OutputRendering InitialRendering = System.Management.Automation.PSStyle.Instance.OutputRendering;

        /// <param name="windowWidth">With <paramref name="captureHost"/>: the host has a raw UI whose window is this many columns wide (otherwise none).</param>
        internal static PwshResult Run(string script, IDictionary<string, object?>? variables = null, bool captureHost = false, Action<PowerShell>? configure = null, Func<string, string, int>? answer = null, int? windowWidth = null)
        {
            var host = captureHost || answer is not null ? new CapturingHost { Answer = answer, WindowWidth = windowWidth } : null;
            using Runspace rs = host is null ? RunspaceFactory.CreateRunspace(Iss.Value) : RunspaceFactory.CreateRunspace(host, Iss.Value);
            rs.ThreadOptions = PSThreadOptions.UseCurrentThread;
            rs.Open();
            foreach (var kv in variables ?? new Dictionary<string, object?>())
            {
                rs.SessionStateProxy.SetVariable(kv.Key, kv.Value);
            }

            using var ps = PowerShell.Create();
            ps.Runspace = rs;
            ps.AddScript(script);
            configure?.Invoke(ps);
            Collection<PSObject> output;
            bool stopped = false;
            try
            {
                output = ps.Invoke();
            }
            catch (PipelineStoppedException)
            {
                output = new Collection<PSObject>();
                stopped = true;
            }

            // $PSStyle is one object for the whole process: a test that changes it changes every later
            // test's output (Out-String with ANSI headers). Change it in a pwsh of its own (RealPwsh).
            if (System.Management.Automation.PSStyle.Instance.OutputRendering != InitialRendering)
            {
                System.Management.Automation.PSStyle.Instance.OutputRendering = InitialRendering;
                throw new InvalidOperationException("This script changed $PSStyle.OutputRendering, which every runspace of the test process shares; run it with RealPwsh instead: " + script);
            }

            return new PwshResult
            {
                Output = output,
                Errors = ps.Streams.Error.ToList(),
                Progress = ps.Streams.Progress.ToList(),
                Warnings = ps.Streams.Warning.ToList(),
                Verbose = ps.Streams.Verbose.ToList(),
                HostText = host?.Text ?? string.Empty,
                Stopped = stopped || ps.InvocationStateInfo.State == PSInvocationState.Stopped,
            };
        }

        internal static PwshResult Run(string script, params (string Name, object? Value)[] variables) =>
            Run(script, variables.ToDictionary(v => v.Name, v => v.Value));

        /// <summary>
        /// Runs with a hook on the progress stream: <paramref name="onProgress"/> sees each record as
        /// the cmdlet writes it (on the pipeline's thread) and may act then, e.g. append to the file
        /// being copied or stop the pipeline as Ctrl+C does.
        /// </summary>
        internal static PwshResult RunWithProgressHook(string script, Action<PowerShell, ProgressRecord> onProgress, params (string Name, object? Value)[] variables) =>
            Run(script, variables.ToDictionary(v => v.Name, v => v.Value), configure: ps =>
                ps.Streams.Progress.DataAdded += (_, e) => onProgress(ps, ps.Streams.Progress[e.Index]));
    }

    /// <summary>A host whose UI appends everything written to a buffer (RawUI is null, no ANSI styling), for format views.</summary>
    internal sealed class CapturingHost : PSHost
    {
        private readonly CapturingUI ui = new();

        public string Text => ui.Buffer.ToString();

        public override System.Globalization.CultureInfo CurrentCulture => System.Globalization.CultureInfo.InvariantCulture;

        public override System.Globalization.CultureInfo CurrentUICulture => System.Globalization.CultureInfo.InvariantCulture;

        public override Guid InstanceId { get; } = Guid.NewGuid();

        public override string Name => "CapturingHost";

        public override PSHostUserInterface UI => ui;

        /// <summary>How a confirmation prompt (caption, message) is answered: the index of the choice (ShouldProcess: 0 Yes, 1 Yes to All, 2 No, 3 No to All); none: a prompt fails.</summary>
        public Func<string, string, int>? Answer
        {
            get => ui.Answer;
            init => ui.Answer = value;
        }

        /// <summary>A raw UI whose window is this many columns wide; none: no raw UI (RawUI is null).</summary>
        public int? WindowWidth
        {
            init => ui.Window = value is int w ? new FixedWindow(w) : null;
        }

        public override Version Version => new(1, 0);

        public override void EnterNestedPrompt() => throw new NotSupportedException();

        public override void ExitNestedPrompt() => throw new NotSupportedException();

        public override void NotifyBeginApplication()
        {
        }

        public override void NotifyEndApplication()
        {
        }

        public override void SetShouldExit(int exitCode)
        {
        }

        private sealed class CapturingUI : PSHostUserInterface
        {
            public System.Text.StringBuilder Buffer { get; } = new();

            public override PSHostRawUserInterface? RawUI => Window;

            public PSHostRawUserInterface? Window { get; set; }

            public override Dictionary<string, PSObject> Prompt(string caption, string message, Collection<FieldDescription> descriptions) => throw new NotSupportedException();

            public Func<string, string, int>? Answer { get; set; }

            public override int PromptForChoice(string caption, string message, Collection<ChoiceDescription> choices, int defaultChoice) =>
                Answer is { } answer ? answer(caption, message) : throw new NotSupportedException();

            public override PSCredential PromptForCredential(string caption, string message, string userName, string targetName) => throw new NotSupportedException();

            public override PSCredential PromptForCredential(string caption, string message, string userName, string targetName, PSCredentialTypes allowedCredentialTypes, PSCredentialUIOptions options) => throw new NotSupportedException();

            public override string ReadLine() => throw new NotSupportedException();

            public override System.Security.SecureString ReadLineAsSecureString() => throw new NotSupportedException();

            // Like a terminal without VT support: table headers arrive styled (even with
            // $PSStyle.OutputRendering = 'PlainText' in this engine), so drop the SGR sequences.
            public override void Write(string value) => Buffer.Append(Plain(value));

            public override void Write(ConsoleColor foregroundColor, ConsoleColor backgroundColor, string value) => Buffer.Append(Plain(value));

            public override void WriteLine(string value) => Buffer.Append(Plain(value)).Append('\n');

            private static string Plain(string s) => System.Text.RegularExpressions.Regex.Replace(s, "\u001b\\[[0-9;]*m", string.Empty);

            public override void WriteErrorLine(string value) => Buffer.Append("ERROR: ").Append(value).Append('\n');

            public override void WriteDebugLine(string message) => Buffer.Append("DEBUG: ").Append(message).Append('\n');

            public override void WriteProgress(long sourceId, ProgressRecord record)
            {
            }

            public override void WriteVerboseLine(string message) => Buffer.Append("VERBOSE: ").Append(message).Append('\n');

            public override void WriteWarningLine(string message) => Buffer.Append("WARNING: ").Append(message).Append('\n');
        }

        /// <summary>A window of a fixed size (columns by 50 rows) and nothing else a test needs.</summary>
        private sealed class FixedWindow(int width) : PSHostRawUserInterface
        {
            public override ConsoleColor BackgroundColor { get; set; } = ConsoleColor.Black;

            public override Size BufferSize { get; set; } = new(width, 50);

            public override Coordinates CursorPosition { get; set; }

            public override int CursorSize { get; set; }

            public override ConsoleColor ForegroundColor { get; set; } = ConsoleColor.Gray;

            public override bool KeyAvailable => false;

            public override Size MaxPhysicalWindowSize => new(width, 50);

            public override Size MaxWindowSize => new(width, 50);

            public override Coordinates WindowPosition { get; set; }

            public override Size WindowSize { get; set; } = new(width, 50);

            public override string WindowTitle { get; set; } = string.Empty;

            public override void FlushInputBuffer()
            {
            }

            public override BufferCell[,] GetBufferContents(Rectangle rectangle) => throw new NotSupportedException();

            public override KeyInfo ReadKey(ReadKeyOptions options) => throw new NotSupportedException();

            public override void ScrollBufferContents(Rectangle source, Coordinates destination, Rectangle clip, BufferCell fill) => throw new NotSupportedException();

            public override void SetBufferContents(Coordinates origin, BufferCell[,] contents) => throw new NotSupportedException();

            public override void SetBufferContents(Rectangle rectangle, BufferCell fill) => throw new NotSupportedException();
        }
    }
}
