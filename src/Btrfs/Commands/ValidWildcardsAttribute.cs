namespace Btrfs.Commands
{
    using System.Management.Automation;

    /// <summary>
    /// Refuses, when the parameter is bound, a pattern that is not a valid wildcard ('[x', a '[' never closed). PowerShell
    /// compiles a pattern only when it first matches a name, so -Include '[x' threw in the middle of a walk and ended the
    /// command there (a review), after some files were processed.
    /// </summary>
    internal sealed class ValidWildcardsAttribute : ValidateArgumentsAttribute
    {
        /// <inheritdoc/>
        protected override void Validate(object arguments, EngineIntrinsics engineIntrinsics)
        {
            object value = arguments is PSObject wrapped ? wrapped.BaseObject : arguments;
            foreach (object? item in value is object[] many ? many : new[] { value })
            {
                if ((item is PSObject p ? p.BaseObject : item) is not string pattern)
                {
                    continue;
                }

                try
                {
                    _ = WildcardPattern.Get(pattern, WildcardOptions.IgnoreCase | WildcardOptions.CultureInvariant).IsMatch(string.Empty);
                }
                catch (WildcardPatternException ex)
                {
                    throw new ValidationMetadataException($"'{pattern}' is not a valid wildcard pattern ({ex.Message.TrimEnd('.')}). Write a backtick before a '[' or ']' that is part of the name (\"x`[1`]\" for x[1]).", ex);
                }
            }
        }
    }
}
