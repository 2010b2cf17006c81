"""The course kit: exercises numbered as the book numbers them, a suggested course that uses
every exercise once, the pages that fit a class by their recorded times, and the recorded times
covering every page of the book."""

from pathlib import Path

import pytest

from scaling_utils import teaching

REPO = Path(__file__).resolve().parent.parent


def test_exercises_are_numbered_in_the_books_order_and_checked_where_a_check_exists():
    table = teaching.exercises(REPO)
    assert list(table.number) == list(range(1, len(table) + 1))
    assert table.label.is_unique
    checks = {p.stem for p in (REPO / "teaching" / "checks").glob("*.py")}
    assert set(table.label[table.checked]) == checks
    assert table.checked.sum() >= 10 and (~table.checked).sum() >= 1
    pages = teaching.toc_pages(REPO)
    assert list(table.page.map(pages.index)) == sorted(table.page.map(pages.index))


def test_the_suggested_course_uses_every_exercise_once_on_the_page_it_belongs_to():
    table = teaching.exercises(REPO).set_index("label")
    used = [label for _, _, in_class, after in teaching.COURSE for label in in_class + after]
    assert sorted(used) == sorted(table.index)
    for _, pages, in_class, after in teaching.COURSE:
        assert all(table.page[label] in pages for label in in_class + after)


def test_number_ranges_reads_as_a_reader_writes_them():
    assert teaching.number_ranges([10, 1, 2, 3, 7, 9]) == "1-3, 7, 9-10"
    assert teaching.number_ranges([4]) == "4"


def test_a_page_fits_a_class_when_its_smoke_run_is_short_enough():
    table = teaching.exercises(REPO)
    limit = teaching.LIVE_RUN_MINUTES * 60
    smoke = {"theorem1_clt": limit, "theorem2_bias_variance": limit + 1}
    times = {"profiles": {"smoke": smoke, "cpu": {"theorem1_clt": 600}}}
    titles = teaching.page_titles(REPO)
    plan = teaching.class_plan(times, table, titles).set_index("page")
    assert bool(plan.loc[titles["theorem1_clt"], teaching.FITS])
    assert not plan.loc[titles["theorem2_bias_variance"], teaching.FITS]
    assert plan.loc[titles["errata"], "minutes at smoke"] == 0  # a page of text runs nothing
    assert plan.loc[titles["theorem1_clt"], "minutes at cpu"] == 10
    assert plan.loc[titles["theorem1_clt"], "exercises"] == "1-3"
    course = teaching.course_plan(table, times, titles)
    assert list(course["class"]) == list(range(1, len(teaching.COURSE) + 1))
    assert titles[teaching.toc_pages(REPO)[0]].startswith("Overview")


def test_missing_times_say_how_to_record_them(tmp_path):
    with pytest.raises(FileNotFoundError, match="benchmarks/run.py --teaching"):
        teaching.read_times(tmp_path / "times.json")


def test_the_recorded_times_cover_every_page_the_course_reads():
    times = teaching.read_times(REPO / "teaching" / "times.json")
    taught = {page for _, pages, _, _ in teaching.COURSE for page in pages
              if (REPO / "notebooks" / f"{page}.md").exists()}
    for profile in ("smoke", "cpu"):
        missing = taught - set(times["profiles"][profile])
        assert not missing, f"no {profile} time for {sorted(missing)}: run " \
                            "`.venv/bin/python benchmarks/run.py --teaching`"
    assert times["commit"] and times["cores"] >= 1


def test_an_exercise_is_found_whatever_its_fence_and_option_order():
    text = ("````{exercise}\n:label: a\n\nx\n````\n\n:::{exercise} Title\n:class: hard\n:label: b\n"
            "\ny\n:::\n")
    assert teaching.EXERCISE.findall(text) == ["a", "b"]
