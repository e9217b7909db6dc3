"""The one place that decides which areas a staff user may see: their own area and below.

Every staff view and export resolves areas through :func:`scoped_area` and filters rows with
:func:`within`; an area outside the user's scope answers 404, as if it did not exist.
A unit account (role ``unit``) sees no subtree at all: only the communities of its unit.
"""
from __future__ import annotations

from flask import abort
from sqlalchemy import ColumnElement, select
from sqlalchemy.orm import Session, object_session, selectinload

from survey.models import Area, Unit, User, unit_account, unit_community


def unit_community_ids(session: Session, user: User) -> set[int]:
    """Return the ids of the communities of a unit account's unit (empty for any other account)."""
    if user.role != "unit":
        return set()
    return set(session.scalars(
        select(unit_community.c.area_id).join(unit_account, unit_account.c.unit_id == unit_community.c.unit_id)
        .where(unit_account.c.user_id == user.id)))


def in_scope(user: User, area: Area) -> bool:
    if user.role == "unit":
        session = object_session(user)
        if session is None:  # staff users come from a query of the request's session
            raise ValueError(f"user {user.id} is not attached to a session")
        return area.level == "community" and area.id in unit_community_ids(session, user)
    return area.path.startswith(user.area.path)


def scoped_area(session: Session, user: User, code: str) -> Area:
    """Return the area with ``code`` if the user may see it; 404 otherwise."""
    area = session.scalar(select(Area).where(Area.code == code))
    if area is None or not in_scope(user, area):
        abort(404)
    return area


def within(area: Area) -> ColumnElement[bool]:
    """SQL condition: ``Area`` rows in the subtree of ``area`` (itself included)."""
    return Area.path.startswith(area.path, autoescape=True)


def breadcrumbs(user: User, area: Area) -> list[Area]:
    """Return the areas from the user's own area down to ``area`` (for the links above a page)."""
    chain: list[Area] = []
    node: Area | None = area
    while node is not None:
        chain.append(node)
        if node.id == user.area_id:
            break
        node = node.parent
    return chain[::-1]


def visible_units(session: Session, user: User, with_communities: bool = False) -> list[Unit]:
    """Return the units an account may see: the city all, other offices those with a community in their area, a unit itself.

    ``with_communities`` loads each unit's communities in the same round (one more query, not one per unit).
    """
    query = select(Unit).order_by(Unit.name)
    if with_communities:
        query = query.options(selectinload(Unit.communities))
    if user.role == "unit":
        query = query.join(unit_account, unit_account.c.unit_id == Unit.id).where(unit_account.c.user_id == user.id)
    elif user.role != "city":
        helped = (select(unit_community.c.unit_id).join(Area, Area.id == unit_community.c.area_id)
                  .where(within(user.area)))
        query = query.where(Unit.id.in_(helped))
    return list(session.scalars(query))
