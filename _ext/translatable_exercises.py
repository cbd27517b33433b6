"""Make the titles of `{exercise}` blocks translatable, like every other heading.

sphinx-exercise builds an exercise's subtitle (the directive's argument, "The backward
pass in numpy") as a node without a source location or raw source, and later (a
post-transform) melts it into the exercise's title; Sphinx's gettext machinery skips the
first and never sees the second, so the Chinese edition would keep English exercise
titles. Here:

- a transform gives each subtitle its exercise's location and its text as raw source
  before Sphinx's Locale transform (priority 20) translates the page, so the translation
  is applied;
- for the gettext builder, the titles are added back to the resolved page as plain
  paragraphs (seen only by the message extraction), so they reach the catalogues;
- a solution's title repeats its exercise's ("Solution to Exercise 2 (The backward pass
  in numpy)"), taken from the copy of the exercise that sphinx-exercise keeps in its
  registry when the directive runs, before the page is translated: after the
  translation, that copy is replaced by the translated exercise.
"""

from docutils import nodes
from sphinx.transforms import SphinxTransform
from sphinx_exercise.nodes import (
    exercise_enumerable_node,
    exercise_node,
    exercise_subtitle,
)


class LocateExerciseTitles(SphinxTransform):
    default_priority = 10  # before sphinx.transforms.i18n.Locale

    def apply(self, **kwargs):
        titles = []
        for node in self.document.findall(lambda n: isinstance(n, exercise_subtitle)):
            if not node.source:
                holder = node.parent
                while holder is not None and not holder.source:
                    holder = holder.parent
                node.source = holder.source if holder is not None else self.env.docname
                node.line = (holder.line if holder is not None else None) or 1
            if not node.rawsource:  # the message Sphinx extracts: the title as written
                node.rawsource = "".join(_markup(child) for child in node.children)
            titles.append((node.rawsource, node.source, node.line))
        self.document["exercise_titles"] = titles


class RegisterTranslatedExercises(SphinxTransform):
    default_priority = 25  # after sphinx.transforms.i18n.Locale

    def apply(self, **kwargs):
        if not self.config.language or self.config.language == "en":
            return
        registry = getattr(self.env, "sphinx_exercise_registry", {})
        kinds = (exercise_node, exercise_enumerable_node)
        for node in self.document.findall(lambda n: isinstance(n, kinds)):
            entry = registry.get(node.get("label"))
            if entry is not None and entry["docname"] == self.env.docname:
                entry["node"] = node.deepcopy()


def _markup(node):
    """A title's child as MyST source: math and code keep their delimiters."""
    if isinstance(node, nodes.math):
        return f"${node.astext()}$"
    if isinstance(node, nodes.literal):
        return f"`{node.astext()}`"
    return node.astext()


def extract_titles(app, doctree, docname):
    """For the gettext builder: the exercise titles as paragraphs, so they are
    extracted."""
    if app.builder.name != "gettext":
        return
    for text, source, line in doctree.get("exercise_titles", []):
        paragraph = nodes.paragraph(text, text)
        paragraph.source, paragraph.line = source, line
        paragraph.uid = (
            ""  # the catalogue keeps only nodes with a uid (as for toctrees)
        )
        doctree += paragraph


def setup(app):
    app.add_transform(LocateExerciseTitles)
    app.add_transform(RegisterTranslatedExercises)
    app.connect("doctree-resolved", extract_titles)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
